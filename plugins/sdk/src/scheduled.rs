//! Work a plugin does on a schedule rather than in answer to a request, such as sending
//! renewal reminders.
//!
//! Declare each schedule in `plugin.toml` (`cron` is in UTC):
//!
//! ```toml
//! [[schedules]]
//! name = "renewal-reminders"
//! cron = "0 8 * * *"
//! ```
//!
//! implement [`Scheduled`] and export it with [`export_schedules!`](crate::export_schedules)
//! next to [`export_plugin!`](crate::export_plugin). The component then exports
//! `guildhall:platform/scheduled` beside its HTTP handler, as one component (the WIT world
//! `scheduled-service`). The platform calls [`Scheduled::run`] once per due time for each
//! council the plugin is installed for, across all of its replicas, with the same limits,
//! capabilities and [`crate::context`] as a request; the caller is anonymous and there is no
//! session. An error's text is recorded as the run's outcome for the alliance's
//! administrators: say what failed, never personal data or a secret.
//!
//! ```no_run
//! use guildhall_plugin::{Handler, Request, Response, Scheduled, context};
//!
//! struct Reminders;
//!
//! impl Handler for Reminders {
//!     fn handle(_req: Request) -> Response {
//!         Response::text(200, "reminders")
//!     }
//! }
//!
//! impl Scheduled for Reminders {
//!     fn run(name: &str) -> Result<(), String> {
//!         match name {
//!             "renewal-reminders" => {
//!                 eprintln!("sending reminders for {}", context::council());
//!                 Ok(())
//!             }
//!             other => Err(format!("unknown schedule {other:?}")),
//!         }
//!     }
//! }
//!
//! guildhall_plugin::export_plugin!(Reminders);
//! guildhall_plugin::export_schedules!(Reminders);
//! ```

/// Bindings for the `guildhall:platform/schedules` world, used by
/// [`export_schedules!`](crate::export_schedules); not part of the SDK's interface.
#[doc(hidden)]
pub mod __bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "guildhall:platform/schedules",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "guildhall_plugin::scheduled::__bindings",
    });
}

/// A plugin's scheduled work.
///
/// Implement it (usually on the same unit struct as [`crate::Handler`]) and export it with
/// [`export_schedules!`](crate::export_schedules).
pub trait Scheduled {
    /// Runs the declared schedule `name` for the council of [`crate::context::council`].
    /// Answer `Err` with a short description when the run failed, in whole or in part; an
    /// unknown `name` is an error too.
    fn run(name: &str) -> Result<(), String>;
}

/// Exports a [`Scheduled`] implementation as the component's `guildhall:platform/scheduled`.
///
/// Use it once, at the top level of your plugin crate, beside [`export_plugin!`](crate::export_plugin):
/// `guildhall_plugin::export_schedules!(MyPlugin);`. The manifest must declare the schedules
/// under `[[schedules]]`.
#[macro_export]
macro_rules! export_schedules {
    ($schedules:ty) => {
        #[doc(hidden)]
        #[derive(Debug)]
        struct __GuildhallScheduledExport;

        impl $crate::scheduled::__bindings::exports::guildhall::platform::scheduled::Guest
            for __GuildhallScheduledExport
        {
            fn run(name: ::std::string::String) -> ::std::result::Result<(), ::std::string::String> {
                <$schedules as $crate::scheduled::Scheduled>::run(&name)
            }
        }

        $crate::scheduled::__bindings::export!(
            __GuildhallScheduledExport with_types_in $crate::scheduled::__bindings
        );
    };
}
