//! The feedback page: citizens' ratings per service and per council, and, for those who
//! may read them, their comments a page at a time.

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use guildhall_store::{CommentCursor, CommentPage};
use guildhall_telemetry::report::{self, Kpi, Period};
use minijinja::context;
use serde::Serialize;

use super::kpis::kpi_report;
use super::period::{Asked, ask, long_date, period_query, period_text, query_of, value};
use super::{
    CouncilName, KPIS, bad_period, chart_rating, council, council_names, count, open,
    satisfaction_text,
};
use crate::Console;
use crate::act;
use crate::charts::{Chart, Kind};
use crate::render::{PageError, page};
use crate::session::SignedIn;

const FEEDBACK: &str = "/api/v1/tenants/{tenant}/feedback";

/// Comments on one page of the feedback page.
const COMMENTS_PAGE: u64 = 20;

#[derive(Debug, Serialize)]
struct RatingRow {
    plugin: String,
    council: CouncilName,
    ratings: String,
    satisfaction: String,
}

#[derive(Debug, Serialize)]
struct ServiceRating {
    plugin: String,
    ratings: String,
    satisfaction: String,
}

/// One citizen's comment as the feedback page shows it.
#[derive(Debug, Serialize)]
struct CommentView {
    date: String,
    plugin: String,
    council: CouncilName,
    rating: String,
    /// The comment's lines, each escaped when shown.
    lines: Vec<String>,
}

/// The comments section: a page of comments and the links to the pages either side.
#[derive(Debug, Serialize)]
struct CommentsView {
    rows: Vec<CommentView>,
    older: Option<String>,
    newer: Option<String>,
    /// Whether this is a later page (so an empty one says so, not "no comments").
    paged: bool,
}

fn comments_view(
    tenant: &str,
    period: &Period,
    names: &BTreeMap<String, String>,
    page: CommentPage,
    paged: bool,
) -> CommentsView {
    let href = |side: &str, id: &str| {
        format!(
            "/console/t/{tenant}/feedback?{}&{side}={id}#comments",
            period_query(period)
        )
    };
    CommentsView {
        older: page.older.as_deref().map(|id| href("before", id)),
        newer: page.newer.as_deref().map(|id| href("after", id)),
        rows: page
            .comments
            .into_iter()
            .map(|c| CommentView {
                date: long_date(&c.day),
                council: council(names, &c.council),
                rating: format!("{} out of 5", c.rating),
                lines: c.comment.lines().map(str::to_string).collect(),
                plugin: c.plugin,
            })
            .collect(),
        paged,
    }
}

/// The feedback page's data: the form as sent, and the ratings (with a page of comments,
/// for those who may read them) when the period is good.
pub(super) fn feedback_data(
    tenant: &str,
    asked: Asked,
    figures: Option<(report::Kpis, BTreeMap<String, String>)>,
    comments: Option<(CommentPage, bool)>,
) -> minijinja::Value {
    let form =
        context! { tenant => tenant, from => asked.from, to => asked.to, errors => asked.errors };
    let Some((kpis, names)) = figures else {
        return form;
    };
    let period = &kpis.period;
    let comments = comments.map(|(page, paged)| comments_view(tenant, period, &names, page, paged));
    let rated: Vec<&Kpi> = kpis.services.iter().filter(|k| k.ratings > 0).collect();
    let rows: Vec<RatingRow> = rated
        .iter()
        .map(|k| RatingRow {
            plugin: k.plugin.clone(),
            council: council(&names, &k.council),
            ratings: count(k.ratings),
            satisfaction: satisfaction_text(k.satisfaction),
        })
        .collect();
    // Per service over all councils: the mean of every rating, weighted by how many.
    let mut per_service: BTreeMap<&str, (i64, f64)> = BTreeMap::new();
    for k in &rated {
        let entry = per_service.entry(k.plugin.as_str()).or_default();
        entry.0 = entry.0.saturating_add(k.ratings);
        entry.1 += k.satisfaction.unwrap_or_default() * k.ratings as f64;
    }
    let means: Vec<(String, i64, f64)> = per_service
        .iter()
        .map(|(plugin, (n, sum))| ((*plugin).to_string(), *n, sum / *n as f64))
        .collect();
    let points: Vec<(String, f64)> = means
        .iter()
        .map(|(p, _, mean)| (p.clone(), *mean))
        .collect();
    let chart = (!points.is_empty()).then(|| {
        Chart {
            id: "satisfaction",
            title: "Mean rating by service, out of 5",
            x_label: "Service",
            y_label: "Mean rating",
            kind: Kind::Bars,
            points: &points,
            format: chart_rating,
            y_max: Some(5.0),
            whole: false,
        }
        .svg()
    });
    let services: Vec<ServiceRating> = means
        .iter()
        .map(|(plugin, n, mean)| ServiceRating {
            plugin: plugin.clone(),
            ratings: count(*n),
            satisfaction: satisfaction_text(Some(*mean)),
        })
        .collect();
    let (total, sum) = per_service
        .values()
        .fold((0i64, 0f64), |(n, s), (m, t)| (n.saturating_add(*m), s + t));
    context! {
        period => period_text(period),
        period_query => period_query(period),
        chart => chart,
        services => services,
        rows => rows,
        total => count(total),
        overall => satisfaction_text((total > 0).then(|| sum / total as f64)),
        comments => comments,
        ..form
    }
}

/// `GET /console/t/{tenant}/feedback?from&to[&before|after]`: citizens' ratings of the
/// alliance's services (how many, and their mean) per service and per council, and their
/// comments, newest first, a page at a time.
///
/// Mirrors `GET /api/v1/tenants/{tenant}/kpis`: satisfaction and ratings are figures that
/// route reports, from the same store read and computation, so whoever may read the KPIs
/// may read this page and nobody else. The comments are what
/// `GET /api/v1/tenants/{tenant}/feedback` reads, shown only to those that route allows
/// (`feedback:read`: comments may hold personal data). `before` and `after` are comment
/// ids; one that is not is ignored (the newest comments are shown).
pub async fn feedback(
    State(console): State<Console>,
    who: SignedIn,
    Path(tenant): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let (scope, chrome) = open(&console, &who, KPIS, &tenant, "Citizens’ feedback", "kpis").await?;
    let query = query_of(raw);
    let asked = ask(&query, false);
    let tenant = scope.tenant().to_string();
    let Some(period) = asked.period.clone() else {
        let data = feedback_data(&tenant, asked, None, None);
        return Ok(bad_period(chrome, "feedback.html", data));
    };
    let (kpis, _) = kpi_report(&console, &scope, &period).await?;
    let names = council_names(&console, &who, &scope).await?;
    let comments = if act::may(&console, &who, Method::GET, FEEDBACK, Some(scope.tenant())) {
        let id = |name| value(&query, name).filter(|id| CommentCursor::is_id(id));
        let cursor = id("before")
            .map(CommentCursor::Before)
            .or_else(|| id("after").map(CommentCursor::After));
        let page = console
            .app
            .store
            .feedback(&scope)
            .comments(&period.from, &period.to, None, COMMENTS_PAGE, cursor)
            .await?;
        Some((page, cursor.is_some()))
    } else {
        None
    };
    let data = feedback_data(&tenant, asked, Some((kpis, names)), comments);
    Ok(page(StatusCode::OK, "feedback.html", &chrome, data))
}

#[cfg(test)]
mod tests {
    use guildhall_store::RatingSummary;

    use super::*;
    use crate::pages::usage::test_support::*;

    #[test]
    fn the_feedback_page_shows_ratings_per_service_and_council() {
        let asked = november();
        let period = asked.period.clone().unwrap();
        let ratings = vec![
            RatingSummary {
                council: "leeds".into(),
                plugin: "bins".into(),
                ratings: 3,
                total: 12,
            },
            RatingSummary {
                council: "york".into(),
                plugin: "bins".into(),
                ratings: 1,
                total: 2,
            },
            RatingSummary {
                council: "york".into(),
                plugin: "pay".into(),
                ratings: 2,
                total: 10,
            },
        ];
        let kpis = report::kpis(
            "north-downs",
            period,
            0.0001,
            &[row("2026-11-01", "hull", "bins", 4, 0)],
            &ratings,
        );
        let names = BTreeMap::from([("york".to_string(), "City of York".to_string())]);
        let html = render(
            "feedback.html",
            "Citizens’ feedback",
            feedback_data("north-downs", asked, Some((kpis, names)), None),
        );
        assert_clean(&html);
        assert!(html.contains("<a href=\"/console/t/north-downs/kpis?from=2026-11-01&amp;to=2026-11-30\" class=\"govuk-back-link\">Back to performance</a>"));
        assert!(html.contains("aria-labelledby=\"satisfaction-title satisfaction-desc\""));
        assert!(html.contains("Mean rating by service, out of 5, 2 values from bins to pay: highest 5.0 (pay), lowest 3.5 (bins)."));
        assert!(html.contains(">6</dd>"), "six ratings in all");
        assert!(html.contains("4.0 out of 5</dd>"), "(12 + 2 + 10) / 6");
        assert!(html.contains(
            "Ratings by service and council from 1 November 2026 to 30 November 2026</caption>"
        ));
        assert!(html.contains("City of York <span"));
        assert!(
            !html.contains(">hull<"),
            "a council with calls but no ratings is not listed"
        );

        let kpis = report::kpis("north-downs", november().period.unwrap(), 0.0001, &[], &[]);
        let html = render(
            "feedback.html",
            "Citizens’ feedback",
            feedback_data(
                "north-downs",
                november(),
                Some((kpis, BTreeMap::new())),
                None,
            ),
        );
        assert!(html.contains(
            "No citizen rated the alliance’s services from 1 November 2026 to 30 November 2026."
        ));
        assert!(!html.contains("<svg"));
        assert!(
            !html.contains("id=\"comments\""),
            "no comments section for those who may not read comments"
        );
    }

    fn comment(id: &str, council: &str, text: &str) -> guildhall_store::Comment {
        guildhall_store::Comment {
            id: id.into(),
            council: council.into(),
            plugin: "bins".into(),
            version: "0.1.0".into(),
            day: "2026-11-03".into(),
            at: "2026-11-03T09:10:11.5Z".into(),
            rating: 2,
            comment: text.into(),
        }
    }

    #[test]
    fn the_feedback_page_lists_comments_escaped_with_older_and_newer_links() {
        let period = november().period.unwrap();
        let kpis = || report::kpis("north-downs", period.clone(), 0.0001, &[], &[]);
        let names = BTreeMap::from([("york".to_string(), "City of York".to_string())]);
        let older = "0193a1b2-0000-7000-8000-000000000001";
        let newer = "0193a1b2-0000-7000-8000-000000000009";
        let page = CommentPage {
            comments: vec![
                comment(newer, "york", "<script>alert(1)</script>"),
                comment(older, "leeds", "First line\nSecond & last"),
            ],
            older: Some(older.into()),
            newer: Some(newer.into()),
        };
        let html = render(
            "feedback.html",
            "Citizens’ feedback",
            feedback_data(
                "north-downs",
                november(),
                Some((kpis(), names.clone())),
                Some((page, true)),
            ),
        );
        assert_clean(&html);
        assert!(html.contains(
            "<h2 class=\"govuk-heading-m\" id=\"comments\">Comments from 1 November 2026 to 30 November 2026</h2>"
        ));
        assert!(
            html.contains(
                "Comments from 1 November 2026 to 30 November 2026, newest first</caption>"
            )
        );
        for header in ["Date", "Service", "Council", "Rating", "Comment"] {
            assert!(
                html.contains(&format!(
                    "<th scope=\"col\" class=\"govuk-table__header\">{header}</th>"
                )),
                "{header}"
            );
        }
        assert!(
            html.contains("<th scope=\"row\" class=\"govuk-table__header\">3 November 2026</th>")
        );
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("First line<br>Second &amp; last"));
        assert!(html.contains("City of York <span"));
        assert!(html.contains(">2 out of 5<"));
        let query = "from=2026-11-01&amp;to=2026-11-30";
        assert!(html.contains(&format!(
            "href=\"/console/t/north-downs/feedback?{query}&amp;after={newer}#comments\" rel=\"prev\""
        )));
        assert!(html.contains(&format!(
            "href=\"/console/t/north-downs/feedback?{query}&amp;before={older}#comments\" rel=\"next\""
        )));
        assert!(html.contains("aria-label=\"Pages of comments\""));
        assert!(html.contains("Newer<span class=\"govuk-visually-hidden\"> comments</span>"));

        // The first page: no newer link; past the end: a way back; none at all: said so.
        let first = CommentPage {
            comments: vec![comment(newer, "york", "Quick")],
            older: None,
            newer: None,
        };
        let html = render(
            "feedback.html",
            "Citizens’ feedback",
            feedback_data(
                "north-downs",
                november(),
                Some((kpis(), names.clone())),
                Some((first, false)),
            ),
        );
        assert!(html.contains(">Quick</td>"));
        assert!(!html.contains("govuk-pagination"));
        let empty = || CommentPage {
            comments: Vec::new(),
            older: None,
            newer: None,
        };
        let html = render(
            "feedback.html",
            "Citizens’ feedback",
            feedback_data(
                "north-downs",
                november(),
                Some((kpis(), names.clone())),
                Some((empty(), true)),
            ),
        );
        assert!(html.contains("There are no more comments here."));
        assert!(html.contains(&format!(
            "href=\"/console/t/north-downs/feedback?{query}#comments\">Show the newest comments</a>"
        )));
        let html = render(
            "feedback.html",
            "Citizens’ feedback",
            feedback_data(
                "north-downs",
                november(),
                Some((kpis(), names)),
                Some((empty(), false)),
            ),
        );
        assert!(
            html.contains("No citizen left a comment from 1 November 2026 to 30 November 2026.")
        );
        assert!(!html.contains("<table"));
    }
}
