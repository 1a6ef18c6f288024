# One logical backup: pg_dump in PostgreSQL's custom format to
# $BACKUP_DIR/guildhall-<UTC timestamp>.dump, then keep the newest $BACKUP_RETAIN dumps.
# pg_dump writes under a hidden temporary name, renamed once it has succeeded, so every
# guildhall-*.dump is complete. A failed dump exits non-zero (the Job fails), leaves no
# file behind and deletes nothing.
set -eu
cd "$BACKUP_DIR"
# Left by a run that was killed (deadline, eviction) before it could clean up.
rm -f .guildhall-*.dump.partial
name="guildhall-$(date -u +%Y%m%dT%H%M%SZ).dump"
partial=".$name.partial"
trap 'rm -f "$partial"' EXIT
pg_dump --format=custom --no-password --exclude-table-data=compiled_artefacts --file="$partial" --dbname="$DATABASE_URL"
mv "$partial" "$name"
echo "wrote $BACKUP_DIR/$name ($(wc -c <"$name") bytes)"
ls -1 guildhall-*.dump | sort -r | tail -n "+$((BACKUP_RETAIN + 1))" | while read -r old; do
    rm -f "$old"
    echo "removed $BACKUP_DIR/$old"
done
