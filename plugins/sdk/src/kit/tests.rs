//! The kit's templates rendered natively: layout, components, errors and escaping.

use super::*;

fn full_site() -> Site {
    Site {
        tenant_name: "North Downs Shared Services".to_owned(),
        council_name: "Tandridge District Council".to_owned(),
        assets: "/assets/govuk-frontend/3f2a9c01".to_owned(),
        brand_stylesheet: Some("/assets/brand/tandridge.css".to_owned()),
        logo: Some("/assets/brand/tandridge.png".to_owned()),
        contact_url: Some("https://www.tandridge.gov.uk/contact".to_owned()),
        accessibility_url: Some("https://www.tandridge.gov.uk/accessibility".to_owned()),
        base_path: "/s/north-downs/tandridge/report-a-problem".to_owned(),
        feedback_path: "/s/north-downs/tandridge/report-a-problem/_feedback".to_owned(),
    }
}

fn bare_site() -> Site {
    Site {
        tenant_name: "North Downs".to_owned(),
        council_name: "Mole Valley".to_owned(),
        assets: "/assets/govuk-frontend/3f2a9c01".to_owned(),
        base_path: "/s/north-downs/mole-valley/bins".to_owned(),
        feedback_path: "/s/north-downs/mole-valley/bins/_feedback".to_owned(),
        ..Site::default()
    }
}

/// A page whose content is `body`, with the components imported.
fn kit_with(body: &'static str) -> Kit {
    let source: &'static str = Box::leak(
        format!(
            "{{% extends \"layout.html\" %}}{{% import \"components.html\" as govuk %}}\
             {{% block content %}}{body}{{% endblock %}}"
        )
        .into_boxed_str(),
    );
    Kit::new().template("test.html", source)
}

fn render(body: &'static str, with: &[(&str, serde_json::Value)]) -> String {
    let kit = kit_with(body);
    let mut page = kit.page("test.html").title("A page");
    for (key, value) in with {
        page = page.with(key, value);
    }
    page.render_for(&full_site()).unwrap()
}

/// The HTML with MiniJinja's escaped slashes turned back, for reading URLs.
fn unslash(html: &str) -> String {
    html.replace("&#x2f;", "/")
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn every_built_in_template_compiles() {
    Kit::new().check().unwrap();
    let broken = Kit::new().template("broken.html", "{% if %}");
    let error = broken.check().unwrap_err();
    assert!(error.message.contains("broken.html"), "{error}");
}

#[test]
fn the_layout_with_every_optional_field() {
    let kit =
        kit_with("<h1 class=\"govuk-heading-l\">{{ title }}</h1>").service_name("Report a problem");
    let html = unslash(
        &kit.page("test.html")
            .title("What is the problem?")
            .render_for(&full_site())
            .unwrap(),
    );
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(html.contains(r#"<html lang="en" class="govuk-template">"#));
    assert!(html.contains(
        "<title>What is the problem? – Report a problem – Tandridge District Council</title>"
    ));
    assert!(html.contains(
        r#"<link rel="stylesheet" href="/assets/govuk-frontend/3f2a9c01/govuk-frontend.min.css">"#
    ));
    assert!(html.contains(r#"<link rel="stylesheet" href="/assets/brand/tandridge.css">"#));
    assert!(html.contains(
        r#"<script type="module" src="/assets/govuk-frontend/3f2a9c01/init.js"></script>"#
    ));
    assert!(html.contains(r##"<a href="#main-content" class="govuk-skip-link""##));
    assert!(html.contains("gh-brand"));
    assert!(html.contains(
        r#"<img class="gh-brand__logo" src="/assets/brand/tandridge.png" alt="Tandridge District Council" height="40">"#
    ));
    assert!(html.contains(
        r#"<a href="/s/north-downs/tandridge/report-a-problem/" class="govuk-service-navigation__link">Report a problem</a>"#
    ));
    assert!(html.contains(
        r#"<a class="govuk-link" href="/s/north-downs/tandridge/report-a-problem/_feedback">give your feedback</a>"#
    ));
    assert!(!html.contains("new tab"));
    assert!(!html.contains("target="));
    assert!(html.contains(r#"<main class="govuk-main-wrapper" id="main-content">"#));
    assert!(html.contains(
        r#"href="https://www.tandridge.gov.uk/contact">Contact Tandridge District Council</a>"#
    ));
    assert!(html.contains(
        r#"href="https://www.tandridge.gov.uk/accessibility">Accessibility statement</a>"#
    ));
    assert!(html.contains(
        "Run by Tandridge District Council on Guildhall, shared by North Downs Shared Services."
    ));
    assert_eq!(count(&html, "<h1"), 1);
    assert!(!html.contains("govuk-error-summary"));
}

#[test]
fn the_layout_without_optional_fields() {
    let html = unslash(
        &kit_with("<h1>{{ title }}</h1>")
            .page("test.html")
            .title("Find your bin day")
            .render_for(&bare_site())
            .unwrap(),
    );
    assert!(
        html.contains("<title>Find your bin day – Mole Valley</title>"),
        "{html}"
    );
    assert!(!html.contains("<img"));
    assert!(html.contains(">Mole Valley</span>"));
    assert_eq!(count(&html, "rel=\"stylesheet\""), 1);
    // No service name, no service navigation; no contact or accessibility links.
    assert!(!html.contains("govuk-service-navigation"));
    assert!(!html.contains("govuk-footer__inline-list"));
    assert!(!html.contains("None"));
    assert!(!html.contains("none"));
    assert!(html.contains("Run by Mole Valley on Guildhall, shared by North Downs."));
}

#[test]
fn the_layout_works_with_a_site_missing_optional_keys() {
    // The platform may pass a site without the optional keys at all, no errors and no
    // service name, and may render with another undefined behaviour.
    for behaviour in [
        minijinja::UndefinedBehavior::Lenient,
        minijinja::UndefinedBehavior::Chainable,
        minijinja::UndefinedBehavior::SemiStrict,
    ] {
        let mut env = Kit::new()
            .template("test.html", "{% extends \"layout.html\" %}")
            .environment();
        env.set_undefined_behavior(behaviour);
        let html = env
            .get_template("test.html")
            .unwrap()
            .render(minijinja::context! {
                site => minijinja::context! {
                    tenant_name => "T", council_name => "C", assets => "/a",
                    base_path => "/s/t/c/p", feedback_path => "/s/t/c/p/_feedback",
                },
                title => "Session expired",
            })
            .unwrap();
        assert!(
            html.contains("<title>Session expired – C</title>"),
            "{html}"
        );
        assert!(!html.contains("<img"));
    }
}

#[test]
fn no_inline_script_or_style_anywhere() {
    let form = Form::parse("d-day=x&name=&kind=a");
    let mut check = form.check();
    check.text("name").required("Enter your name");
    check.date("d", "Date");
    let errors = check.into_errors();
    let html = kit_with(
        r#"{{ govuk.input("name", "Name", form=form) }}{{ govuk.date_input("d", "Date", form=form) }}
        {{ govuk.start_button("/x") }}{{ govuk.warning_text("w") }}"#,
    )
    .page("test.html")
    .title("t")
    .form(&form, &errors)
    .render_for(&full_site())
    .unwrap();
    for forbidden in ["style=", "<style", "onclick", "onload", "javascript:"] {
        assert!(!html.contains(forbidden), "{forbidden}");
    }
    // The only script is the module the platform serves, with no body.
    assert_eq!(count(&html, "<script"), 1);
    assert!(html.contains("init.js\"></script>"));
}

#[test]
fn errors_prefix_the_title_and_show_the_summary() {
    let form = Form::parse("service=&location=");
    let mut check = form.check();
    check.choice("service", &["pothole"], "Select the type of problem");
    check
        .text("location")
        .required("Enter the street or landmark");
    let errors = check.into_errors();
    let kit = kit_with(
        r#"<h1>{{ title }}</h1>{{ govuk.radios("service", "Type", [{"value": "pothole", "text": "Pothole"}], form=form) }}
        {{ govuk.input("location", "Street", form=form) }}"#,
    );
    let page = kit
        .page("test.html")
        .title("Where is it?")
        .form(&form, &errors);
    let html = page.render_for(&full_site()).unwrap();
    assert!(html.contains("<title>Error: Where is it? – Tandridge District Council</title>"));
    let summary_at = html.find("govuk-error-summary").unwrap();
    assert!(
        summary_at < html.find("<h1>").unwrap(),
        "the summary comes first"
    );
    assert!(
        html.contains(r#"<div class="govuk-error-summary" data-module="govuk-error-summary">"#)
    );
    assert!(html.contains(r#"<div role="alert">"#));
    assert!(html.contains(r#"<h2 class="govuk-error-summary__title">There is a problem</h2>"#));
    assert!(html.contains(r##"<li><a href="#service">Select the type of problem</a></li>"##));
    assert!(html.contains(r##"<li><a href="#location">Enter the street or landmark</a></li>"##));
    // The first radio carries the group's name as its id, for the summary's link.
    assert!(html.contains(r#"id="service" name="service" type="radio" value="pothole""#));
    // Each field shows its message and is described by it.
    assert!(html.contains(
        r#"<p id="location-error" class="govuk-error-message"><span class="govuk-visually-hidden">Error:</span> Enter the street or landmark</p>"#
    ));
    assert!(html.contains(r#"aria-describedby="location-error""#));
    assert!(html.contains(r#"<fieldset class="govuk-fieldset" aria-describedby="service-error">"#));
    assert!(html.contains("govuk-input govuk-input--error"));
    assert_eq!(count(&html, "govuk-form-group--error"), 2);
    assert_eq!(page.respond_for(&full_site()).status, 422);
    let ok = kit.page("test.html").title("Where is it?").values(&form);
    assert_eq!(ok.respond_for(&full_site()).status, 200);
}

#[test]
fn hostile_answers_are_text_in_every_component() {
    const HOSTILE: &str = "<script>alert(1)</script>\"'><b>x";
    let item = serde_json::json!({"value": HOSTILE, "text": HOSTILE, "hint": HOSTILE});
    let with = [
        ("h", serde_json::json!(HOSTILE)),
        ("items", serde_json::json!([item])),
        (
            "rows",
            serde_json::to_value([
                SummaryRow::new(HOSTILE, HOSTILE).change(HOSTILE),
                SummaryRow::lines(HOSTILE, vec![HOSTILE.to_owned()]),
            ])
            .unwrap(),
        ),
        (
            "errors",
            serde_json::json!([{"href": HOSTILE, "text": HOSTILE}]),
        ),
    ];
    let html = render(
        r#"<h1>{{ h }}</h1>
        {{ govuk.input(h, h, value=h, error=h, hint=h, autocomplete=h) }}
        {{ govuk.textarea(h, h, value=h, error=h, hint=h) }}
        {{ govuk.radios(h, h, items, value=h, error=h, hint=h) }}
        {{ govuk.checkboxes(h, h, items, values=[h], error=h, hint=h) }}
        {{ govuk.select(h, h, items, value=h, error=h, hint=h) }}
        {{ govuk.date_input(h, h, day=h, month=h, year=h, error=h, hint=h) }}
        {{ govuk.error_summary(errors) }}
        {{ govuk.error_message(h, h) }}
        {{ govuk.summary_list(rows) }}
        {{ govuk.panel(h, text=h, reference=h) }}
        {{ govuk.notification_banner(h, text=h) }}
        {{ govuk.back_link(h, h) }}
        {{ govuk.button(h, name=h, value=h) }}
        {{ govuk.button_link(h, h) }}
        {{ govuk.start_button(h, h) }}
        {{ govuk.table(h, [h], [[h, h]]) }}
        {{ govuk.inset_text(h) }}{{ govuk.warning_text(h) }}
        {% call govuk.post_form(h, h) %}{% endcall %}{% call govuk.get_form(h) %}{% endcall %}
        {% call govuk.fieldset(h) %}{% endcall %}"#,
        &with,
    );
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(!html.contains("<b>"), "{html}");
    assert!(!html.contains("\"'>"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;&quot;&#x27;&gt;&lt;b&gt;x"));
    // The checked radio, checkbox and option were recognised despite the markup.
    assert_eq!(count(&html, " checked"), 2);
    assert_eq!(count(&html, " selected"), 1);
    // Also through the layout's title, the site and the error summary.
    let site = Site {
        council_name: HOSTILE.to_owned(),
        tenant_name: HOSTILE.to_owned(),
        logo: Some(HOSTILE.to_owned()),
        contact_url: Some(HOSTILE.to_owned()),
        ..full_site()
    };
    let form = Form::parse("name=%3Cscript%3E");
    let mut errors = Errors::new();
    errors.add("name", HOSTILE);
    let html = kit_with("<h1>{{ title }}</h1>{{ govuk.input(\"name\", title, form=form) }}")
        .service_name(HOSTILE)
        .page("test.html")
        .title(HOSTILE)
        .form(&form, &errors)
        .render_for(&site)
        .unwrap();
    assert!(!html.contains("<script>"), "{html}");
    assert!(!html.contains("<b>"), "{html}");
    assert!(!html.contains("\"'>"), "{html}");
}

#[test]
fn inputs_and_textareas() {
    let html = unslash(&render(
        r#"{{ govuk.input("email", "Email address", value="jo@example.org", hint="We will only use it for this report", type="email", autocomplete="email", spellcheck=false, width="20") }}
        {{ govuk.input("name", "Full name", heading=true) }}
        {{ govuk.textarea("description", "Describe the problem", value="Deep", rows=8) }}"#,
        &[],
    ));
    assert!(html.contains(r#"<label class="govuk-label" for="email">Email address</label>"#));
    assert!(html.contains(
        r#"<div id="email-hint" class="govuk-hint">We will only use it for this report</div>"#
    ));
    assert!(html.contains(
        r#"<input class="govuk-input govuk-input--width-20" id="email" name="email" type="email" value="jo@example.org" aria-describedby="email-hint" autocomplete="email" spellcheck="false">"#
    ), "{html}");
    assert!(html.contains(
        r#"<h1 class="govuk-label-wrapper"><label class="govuk-label govuk-label--l" for="name">Full name</label></h1>"#
    ));
    assert!(
        html.contains(r#"<input class="govuk-input" id="name" name="name" type="text" value="">"#)
    );
    assert!(html.contains(
        r#"<textarea class="govuk-textarea" id="description" name="description" rows="8">Deep</textarea>"#
    ));
}

#[test]
fn hint_and_error_both_describe_a_field() {
    let form = Form::parse("phone=123");
    let mut check = form.check();
    check
        .text("phone")
        .phone("Enter a telephone number, like 01632 960 001");
    let errors = check.into_errors();
    let html = kit_with(r#"{{ govuk.input("phone", "Phone", form=form, hint="For international numbers include the country code", type="tel") }}"#)
        .page("test.html")
        .title("t")
        .form(&form, &errors)
        .render_for(&full_site())
        .unwrap();
    assert!(
        html.contains(r#"value="123" aria-describedby="phone-hint phone-error""#),
        "{html}"
    );
}

#[test]
fn radios_checkboxes_and_selects() {
    let items = serde_json::json!([
        {"value": "pothole", "text": "Pothole", "hint": "A hole in the road"},
        {"value": "graffiti", "text": "Graffiti"},
        {"divider": "or"},
        {"value": "other", "text": "Something else"},
    ]);
    let html = render(
        r#"{{ govuk.radios("service", "What is the problem?", items, value="graffiti", hint="Choose one", heading=true, inline=true) }}
        {{ govuk.checkboxes("bins", "Which bins?", items, values=["pothole", "other"]) }}
        {{ govuk.select("sort", "Sort by", items, value="other") }}"#,
        &[("items", items)],
    );
    assert!(html.contains(r#"<fieldset class="govuk-fieldset" aria-describedby="service-hint">"#));
    assert!(html.contains(r#"<legend class="govuk-fieldset__legend govuk-fieldset__legend--l">"#));
    assert!(html.contains(r#"<h1 class="govuk-fieldset__heading">What is the problem?</h1>"#));
    assert!(
        html.contains(
            r#"<div class="govuk-radios govuk-radios--inline" data-module="govuk-radios">"#
        )
    );
    assert!(html.contains(
        r#"<input class="govuk-radios__input" id="service" name="service" type="radio" value="pothole" aria-describedby="service-item-hint">"#
    ), "{html}");
    assert!(html.contains(r#"<div id="service-item-hint" class="govuk-hint govuk-radios__hint">A hole in the road</div>"#));
    assert!(
        html.contains(r#"id="service-2" name="service" type="radio" value="graffiti" checked>"#)
    );
    assert!(html.contains(r#"<div class="govuk-radios__divider">or</div>"#));
    assert!(html.contains(
        r#"<label class="govuk-label govuk-radios__label" for="service-4">Something else</label>"#
    ));
    assert!(html.contains(
        r#"<legend class="govuk-fieldset__legend govuk-fieldset__legend--m">Which bins?</legend>"#
    ));
    assert!(html.contains(r#"id="bins" name="bins" type="checkbox" value="pothole" aria-describedby="bins-item-hint" checked>"#) || html.contains(r#"id="bins" name="bins" type="checkbox" value="pothole" checked aria-describedby="bins-item-hint">"#), "{html}");
    assert!(html.contains(r#"id="bins-4" name="bins" type="checkbox" value="other" checked>"#));
    assert!(html.contains(r#"<option value="other" selected>Something else</option>"#));
    assert_eq!(count(&html, " checked"), 3);
}

#[test]
fn date_inputs_show_which_parts_are_wrong() {
    let form = Form::parse("started-day=12&started-month=&started-year=2026");
    let mut check = form.check();
    check.date("started", "Date the problem started");
    let errors = check.into_errors();
    let kit = kit_with(
        r#"{{ govuk.date_input("started", "When did it start?", form=form, hint="For example, 27 3 2026", autocomplete="bday") }}"#,
    );
    let html = kit
        .page("test.html")
        .title("t")
        .form(&form, &errors)
        .render_for(&full_site())
        .unwrap();
    assert!(
        html.contains(
            r##"<a href="#started-month">Date the problem started must include a month</a>"##
        ),
        "{html}"
    );
    assert!(html.contains(
        r#"<fieldset class="govuk-fieldset" role="group" aria-describedby="started-hint started-error">"#
    ));
    assert!(html.contains(r#"<div class="govuk-date-input" id="started">"#));
    assert!(html.contains(
        r#"<label class="govuk-label govuk-date-input__label" for="started-day">Day</label>"#
    ));
    assert!(html.contains(
        r#"<input class="govuk-input govuk-date-input__input govuk-input--width-2" id="started-day" name="started-day" type="text" inputmode="numeric" value="12" autocomplete="bday-day">"#
    ), "{html}");
    assert!(html.contains(
        r#"<input class="govuk-input govuk-date-input__input govuk-input--width-2 govuk-input--error" id="started-month" name="started-month" type="text" inputmode="numeric" value="" autocomplete="bday-month">"#
    ));
    assert!(html.contains(
        r#"<input class="govuk-input govuk-date-input__input govuk-input--width-4" id="started-year" name="started-year" type="text" inputmode="numeric" value="2026" autocomplete="bday-year">"#
    ));
    // A date wrong as a whole marks every part.
    let form = Form::parse("started-day=&started-month=&started-year=");
    let mut check = form.check();
    check
        .date("started", "Date")
        .required("Enter the date the problem started");
    let errors = check.into_errors();
    let html = kit
        .page("test.html")
        .title("t")
        .form(&form, &errors)
        .render_for(&full_site())
        .unwrap();
    assert_eq!(count(&html, "govuk-input--error"), 3);
    assert!(html.contains(r##"<a href="#started-day">Enter the date the problem started</a>"##));
}

#[test]
fn summary_lists_panels_and_banners() {
    let rows = serde_json::to_value([
        SummaryRow::new("Type of problem", "Pothole").change("/s/t/c/p/where"),
        SummaryRow::lines(
            "Address",
            vec!["1 High Street".to_owned(), "Oxted".to_owned()],
        ),
    ])
    .unwrap();
    let html = unslash(&render(
        r#"{{ govuk.summary_list(rows) }}{{ govuk.panel("Report sent", reference="42") }}
        {{ govuk.notification_banner("Your report was sent", success=true) }}{{ govuk.back_link("/s/t/c/p/") }}"#,
        &[("rows", rows)],
    ));
    assert!(html.contains(r#"<dt class="govuk-summary-list__key">Type of problem</dt>"#));
    assert!(
        html.contains(r#"<dd class="govuk-summary-list__value">Pothole</dd>"#),
        "{html}"
    );
    assert!(html.contains(
        r#"<dd class="govuk-summary-list__actions"><a class="govuk-link" href="/s/t/c/p/where">Change<span class="govuk-visually-hidden"> type of problem</span></a></dd>"#
    ));
    assert!(
        html.contains(
            r#"<div class="govuk-summary-list__row govuk-summary-list__row--no-actions">"#
        )
    );
    assert!(html.contains(r#"<dd class="govuk-summary-list__value">1 High Street<br>Oxted</dd>"#));
    assert!(html.contains(r#"<h1 class="govuk-panel__title">Report sent</h1>"#));
    assert!(html.contains("Your reference number<br><strong>42</strong>"));
    assert!(html.contains(
        r#"class="govuk-notification-banner govuk-notification-banner--success" role="alert""#
    ));
    assert!(html.contains(r#"<a href="/s/t/c/p/" class="govuk-back-link">Back</a>"#));
    // A list without any action marks no row.
    let rows = serde_json::to_value([SummaryRow::new("Bin", "Refuse")]).unwrap();
    let html = render(r#"{{ govuk.summary_list(rows) }}"#, &[("rows", rows)]);
    assert!(!html.contains("no-actions"));
}

#[test]
fn forms_carry_the_token() {
    let html = unslash(&render(
        r#"{% call govuk.post_form("/s/t/c/p/where", csrf) %}{{ govuk.button("Continue") }}{% endcall %}
        {% call govuk.get_form("/s/t/c/p/addresses") %}{{ govuk.button("Find address") }}{% endcall %}"#,
        &[("csrf", serde_json::json!("tok-123"))],
    ));
    assert!(
        html.contains(
            r#"<form method="post" action="/s/t/c/p/where" novalidate>
  <input type="hidden" name="csrf" value="tok-123">"#
        ),
        "{html}"
    );
    assert!(html.contains(r#"<form method="get" action="/s/t/c/p/addresses" novalidate>"#));
    assert!(html.contains(
        r#"<button type="submit" class="govuk-button" data-module="govuk-button" data-prevent-double-click="true">Continue</button>"#
    ));
    assert_eq!(count(&html, "name=\"csrf\""), 1);
}

#[test]
fn pages_are_html_responses() {
    let response = kit_with("<h1>{{ title }}</h1><p>{{ extra.n }}</p>")
        .page("test.html")
        .title("Hello")
        .with("extra", &serde_json::json!({"n": 5}))
        .respond_for(&bare_site());
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(response.body_text().contains("<p>5</p>"));
    let missing = Kit::new().page("nope.html").respond_for(&bare_site());
    assert_eq!(missing.status, 500);
    assert!(
        missing
            .body_text()
            .contains("Sorry, there is a problem with the service")
    );
    assert_eq!(
        Kit::new()
            .page("error.html")
            .title("x")
            .status(418)
            .respond_for(&bare_site())
            .status,
        418
    );
}

#[test]
fn error_pages() {
    let kit = Kit::new();
    let page = kit.error_page_for(&bare_site(), &PageError::from(SessionError::NoSession));
    assert_eq!(page.status, 400);
    let html = unslash(&page.body_text());
    assert!(
        html.contains("<title>Sorry, you need to start again – Mole Valley</title>"),
        "{html}"
    );
    assert!(html.contains(
        r#"<a class="govuk-link" href="/s/north-downs/mole-valley/bins/">Start again</a>"#
    ));
    let page = kit.error_page_for(
        &bare_site(),
        &PageError::from(SessionError::Unavailable("db at 10.1.1.1".to_owned())),
    );
    assert_eq!(page.status, 503);
    assert!(!page.body_text().contains("10.1.1.1"));
    assert!(!page.body_text().contains("Start again"));
    assert_eq!(PageError::from(KvError::QuotaExceeded(1)).status, 507);
    assert_eq!(PageError::from(BodyError::NotUtf8).status, 400);
    assert_eq!(PageError::from(Refusal::Unauthenticated).status, 401);
    assert_eq!(PageError::not_found().status, 404);
    // A plugin's own error page replaces the kit's.
    let own = Kit::new()
        .template("error.html", "{% extends \"layout.html\" %}{% block content %}<h1>Own: {{ title }}</h1>{% endblock %}")
        .error_page_for(&bare_site(), &PageError::not_found());
    assert!(own.body_text().contains("<h1>Own: Page not found</h1>"));
}

#[test]
fn children_may_use_the_layouts_components_without_importing_them() {
    // The platform's own pages rely on the layout's `import "components.html" as govuk`.
    let html = Kit::new()
        .template(
            "child.html",
            r#"{% extends "layout.html" %}{% block content %}{{ govuk.panel(title) }}{% endblock %}"#,
        )
        .page("child.html")
        .title("Thank you for your feedback")
        .render_for(&bare_site())
        .unwrap();
    assert!(html.contains(r#"<h1 class="govuk-panel__title">Thank you for your feedback</h1>"#));
}

#[test]
fn a_start_page_named_as_its_service_says_it_once() {
    let html = kit_with("<h1>{{ title }}</h1>")
        .service_name("Report a problem")
        .page("test.html")
        .title("Report a problem")
        .render_for(&full_site())
        .unwrap();
    assert!(html.contains("<title>Report a problem – Tandridge District Council</title>"));
}
