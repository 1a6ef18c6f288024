//! A 64 KiB wasm stack instead of Rust's default 1 MiB: `hello` needs little, and a small
//! stack keeps the pages a call touches at the start of linear memory, which the runtime
//! keeps resident between calls.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg=-zstack-size=65536");
    }
}
