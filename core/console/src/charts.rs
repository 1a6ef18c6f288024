//! Charts drawn on the server as SVG, so they need no script and pass the console's
//! Content-Security-Policy: every colour, size and font is a presentation attribute, never
//! a `style` attribute or element.
//!
//! A chart is an image with a text alternative: the `<svg>` has `role="img"` and is
//! labelled by its `<title>` and a `<desc>` that summarises the data ([`Chart::summary`]).
//! Pages follow every chart with the same data as a table, so nothing is shown only as a
//! picture, and one series in one colour means nothing depends on telling colours apart.

use std::fmt::Write as _;

/// How the points are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One bar per point, from zero.
    Bars,
    /// A line through the points, with a marker on each.
    Line,
}

/// One series of `(label, value)` points, with what is needed to draw and describe it.
#[derive(Debug, Clone)]
pub struct Chart<'a> {
    /// Makes the ids of the `<title>` and `<desc>`; unique on the page.
    pub id: &'a str,
    /// What the chart shows, for example "Calls per day".
    pub title: &'a str,
    /// The horizontal axis's name.
    pub x_label: &'a str,
    /// The vertical axis's name.
    pub y_label: &'a str,
    /// Bars or a line.
    pub kind: Kind,
    /// The points, in order. Values that are not finite count as 0.
    pub points: &'a [(String, f64)],
    /// How a value is written, on the axis and in the summary.
    pub format: fn(f64) -> String,
    /// The top of the vertical axis when values cannot exceed it (100 for a percentage, 5
    /// for a rating); otherwise a round number above the largest value.
    pub y_max: Option<f64>,
    /// Whether values are whole numbers (counts), so the axis has no fractional steps.
    pub whole: bool,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 320.0;
const TOP: f64 = 16.0;
const RIGHT: f64 = 16.0;
const BOTTOM: f64 = 64.0;
/// Steps on the vertical axis.
const STEPS: usize = 5;
/// Roughly how wide one character is at [`FONT_SIZE`].
const CHAR_WIDTH: f64 = 7.0;
const FONT_SIZE: &str = "13";
const FONT: &str = "arial, sans-serif";
/// GOV.UK blue and black: 5.2:1 and 19:1 against white.
const BLUE: &str = "#1d70b8";
const BLACK: &str = "#0b0c0c";
const GRID: &str = "#b1b4b6";
/// The longest tick label drawn on the horizontal axis; the table has the whole text.
const MAX_TICK_CHARS: usize = 24;

/// Escapes text for an XML text node or a quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// An id made only of letters, digits, `-` and `_`, starting with a letter.
fn safe_id(id: &str) -> String {
    let cleaned: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if cleaned.starts_with(|c: char| c.is_ascii_alphabetic()) {
        cleaned
    } else {
        format!("chart-{cleaned}")
    }
}

/// Digits with thousands separated by commas: `1234567` becomes `1,234,567`.
pub fn thousands(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A whole number with thousands separated by commas: `1,234,567`.
pub fn grouped(value: f64) -> String {
    if !value.is_finite() {
        return "0".to_string();
    }
    let digits = thousands(&format!("{:.0}", value.abs()));
    if value.round() < 0.0 {
        format!("-{digits}")
    } else {
        digits
    }
}

/// The smallest of 1, 2, 5 or 10 times a power of ten that is at least `max`.
fn nice_ceiling(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(max.log10().floor());
    let scaled = max / power;
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .find(|s| scaled <= *s * (1.0 + 1e-12))
        .unwrap_or(10.0);
    step * power
}

fn shorten(label: &str) -> String {
    if label.chars().count() <= MAX_TICK_CHARS {
        label.to_string()
    } else {
        let mut short: String = label.chars().take(MAX_TICK_CHARS - 1).collect();
        short.push('…');
        short
    }
}

impl Chart<'_> {
    fn values(&self) -> impl Iterator<Item = f64> + '_ {
        self.points
            .iter()
            .map(|(_, v)| if v.is_finite() { *v } else { 0.0 })
    }

    /// The top of the vertical axis.
    fn top(&self) -> f64 {
        let max = self.values().fold(0.0, f64::max);
        match self.y_max {
            Some(top) if top > 0.0 && max <= top => top,
            _ => {
                let top = nice_ceiling(max);
                if self.whole {
                    top.max(STEPS as f64)
                } else {
                    top
                }
            }
        }
    }

    /// The text alternative: what the chart shows, over which points, and its highest and
    /// lowest values with where they are.
    pub fn summary(&self) -> String {
        let format = self.format;
        match self.points {
            [] => format!("{}: no data.", self.title),
            [(label, _)] => {
                let value = self.values().next().unwrap_or_default();
                format!("{}: {} for {label}.", self.title, format(value))
            }
            [(first, _), .., (last, _)] => {
                let mut highest = 0;
                let mut lowest = 0;
                let values: Vec<f64> = self.values().collect();
                for (i, v) in values.iter().enumerate() {
                    if *v > values[highest] {
                        highest = i;
                    }
                    if *v < values[lowest] {
                        lowest = i;
                    }
                }
                format!(
                    "{}, {} values from {first} to {last}: highest {} ({}), lowest {} ({}).",
                    self.title,
                    grouped(values.len() as f64),
                    format(values[highest]),
                    self.points[highest].0,
                    format(values[lowest]),
                    self.points[lowest].0,
                )
            }
        }
    }

    /// The chart as an `<svg>` element, ready to put in a page as it is.
    pub fn svg(&self) -> String {
        let id = safe_id(self.id);
        let mut svg = String::new();
        let _ = write!(
            svg,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"guildhall-chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
             width=\"100%\" preserveAspectRatio=\"xMinYMin meet\" role=\"img\" \
             aria-labelledby=\"{id}-title {id}-desc\" font-family=\"{FONT}\" font-size=\"{FONT_SIZE}\" fill=\"{BLACK}\">\
             <title id=\"{id}-title\">{}</title><desc id=\"{id}-desc\">{}</desc>",
            escape(self.title),
            escape(&self.summary()),
        );
        if self.points.is_empty() {
            let _ = write!(
                svg,
                "<rect x=\"0.5\" y=\"0.5\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"{GRID}\"/>\
                 <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">No data</text></svg>",
                WIDTH - 1.0,
                HEIGHT - 1.0,
                WIDTH / 2.0,
                HEIGHT / 2.0,
            );
            return svg;
        }
        let top = self.top();
        let format = self.format;
        let ticks: Vec<(f64, String)> = (0..=STEPS)
            .map(|i| {
                let value = top * i as f64 / STEPS as f64;
                (value, format(value))
            })
            .collect();
        let widest = ticks
            .iter()
            .map(|(_, t)| t.chars().count())
            .max()
            .unwrap_or(1);
        // Room for the rotated axis name and the widest tick label on the left, and for
        // half the last label on the horizontal axis on the right.
        let left = (32.0 + widest as f64 * CHAR_WIDTH).clamp(56.0, 260.0);
        let longest = self
            .points
            .iter()
            .map(|(l, _)| l.chars().count().min(MAX_TICK_CHARS))
            .max()
            .unwrap_or(1);
        let right = (longest as f64 * CHAR_WIDTH / 2.0).clamp(RIGHT, 100.0);
        let (x0, x1, y0, y1) = (left, WIDTH - right, TOP, HEIGHT - BOTTOM);
        let plot_h = y1 - y0;
        let y_of = |v: f64| y1 - (v / top).clamp(0.0, 1.0) * plot_h;

        // Grid lines and tick labels on the vertical axis.
        for (value, text) in &ticks {
            let y = y_of(*value);
            let _ = write!(
                svg,
                "<line x1=\"{x0:.2}\" y1=\"{y:.2}\" x2=\"{x1:.2}\" y2=\"{y:.2}\" stroke=\"{GRID}\" stroke-width=\"1\"/>\
                 <text x=\"{:.2}\" y=\"{:.2}\" text-anchor=\"end\">{}</text>",
                x0 - 6.0,
                y + 4.0,
                escape(text),
            );
        }

        let n = self.points.len();
        let slot = (x1 - x0) / n as f64;
        let values: Vec<f64> = self.values().collect();
        match self.kind {
            Kind::Bars => {
                let width = (slot * 0.7).max(0.5);
                for (i, v) in values.iter().enumerate() {
                    let y = y_of(*v);
                    let _ = write!(
                        svg,
                        "<rect x=\"{:.2}\" y=\"{y:.2}\" width=\"{width:.2}\" height=\"{:.2}\" fill=\"{BLUE}\"/>",
                        x0 + i as f64 * slot + (slot - width) / 2.0,
                        y1 - y,
                    );
                }
            }
            Kind::Line => {
                let at: Vec<(f64, f64)> = values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (x0 + (i as f64 + 0.5) * slot, y_of(*v)))
                    .collect();
                if at.len() > 1 {
                    let path: Vec<String> =
                        at.iter().map(|(x, y)| format!("{x:.2},{y:.2}")).collect();
                    let _ = write!(
                        svg,
                        "<polyline points=\"{}\" fill=\"none\" stroke=\"{BLUE}\" stroke-width=\"3\"/>",
                        path.join(" ")
                    );
                }
                let radius = (slot / 3.0).clamp(1.5, 5.0);
                for (x, y) in at {
                    let _ = write!(
                        svg,
                        "<circle cx=\"{x:.2}\" cy=\"{y:.2}\" r=\"{radius:.2}\" fill=\"{BLACK}\"/>"
                    );
                }
            }
        }

        // The axes, drawn over the bars' feet.
        let _ = write!(
            svg,
            "<line x1=\"{x0:.2}\" y1=\"{y0:.2}\" x2=\"{x0:.2}\" y2=\"{y1:.2}\" stroke=\"{BLACK}\" stroke-width=\"1\"/>\
             <line x1=\"{x0:.2}\" y1=\"{y1:.2}\" x2=\"{x1:.2}\" y2=\"{y1:.2}\" stroke=\"{BLACK}\" stroke-width=\"1\"/>"
        );

        // Labels on the horizontal axis, as many as fit without overlapping.
        let room = longest as f64 * CHAR_WIDTH + 12.0;
        let every = ((room / slot).ceil() as usize).max(1);
        for (i, (label, _)) in self.points.iter().enumerate() {
            if !i.is_multiple_of(every) {
                continue;
            }
            let x = x0 + (i as f64 + 0.5) * slot;
            let _ = write!(
                svg,
                "<line x1=\"{x:.2}\" y1=\"{y1:.2}\" x2=\"{x:.2}\" y2=\"{:.2}\" stroke=\"{BLACK}\" stroke-width=\"1\"/>\
                 <text x=\"{x:.2}\" y=\"{:.2}\" text-anchor=\"middle\">{}</text>",
                y1 + 5.0,
                y1 + 20.0,
                escape(&shorten(label)),
            );
        }

        // The axes' names.
        let _ = write!(
            svg,
            "<text x=\"{:.2}\" y=\"{:.2}\" text-anchor=\"middle\" font-weight=\"bold\">{}</text>\
             <text x=\"0\" y=\"0\" transform=\"translate(16 {:.2}) rotate(-90)\" text-anchor=\"middle\" font-weight=\"bold\">{}</text>",
            (x0 + x1) / 2.0,
            HEIGHT - 14.0,
            escape(self.x_label),
            (y0 + y1) / 2.0,
            escape(self.y_label),
        );
        svg.push_str("</svg>");
        svg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(v: f64) -> String {
        grouped(v)
    }

    fn percent(v: f64) -> String {
        format!("{v:.0}%")
    }

    fn chart(points: &[(String, f64)]) -> Chart<'_> {
        Chart {
            id: "calls",
            title: "Calls per day",
            x_label: "Day",
            y_label: "Calls",
            kind: Kind::Bars,
            points,
            format: count,
            y_max: None,
            whole: true,
        }
    }

    fn days(values: &[f64]) -> Vec<(String, f64)> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{} November 2026", i + 1), *v))
            .collect()
    }

    /// The `height` of every `<rect>` drawn as a bar.
    fn bar_heights(svg: &str) -> Vec<f64> {
        svg.split("<rect ")
            .skip(1)
            .filter(|r| r.contains(BLUE))
            .map(|r| {
                let h = r.split("height=\"").nth(1).unwrap();
                h[..h.find('"').unwrap()].parse().unwrap()
            })
            .collect()
    }

    #[test]
    fn every_text_is_escaped() {
        let points = vec![
            ("<script>alert(1)</script>".to_string(), 3.0),
            ("Tom & \"Jerry's\"".to_string(), 1.0),
        ];
        let mut c = chart(&points);
        c.title = "Calls <b>per</b> day";
        c.x_label = "Day & night";
        c.y_label = "\"Calls\"";
        c.id = "x\" onload=\"alert(1)";
        let svg = c.svg();
        assert!(!svg.contains("<script"), "{svg}");
        assert!(!svg.contains("<b>"), "{svg}");
        assert!(!svg.contains("onload=\""), "{svg}");
        assert!(
            svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{svg}"
        );
        assert!(svg.contains("Calls &lt;b&gt;per&lt;/b&gt; day"));
        assert!(svg.contains("Day &amp; night"));
        assert!(svg.contains("&quot;Calls&quot;"));
        assert!(svg.contains("Tom &amp; &quot;Jerry&#39;s&quot;"));
        assert_eq!(escape("a\u{0}b"), "a\u{fffd}b");
    }

    #[test]
    fn the_image_is_labelled_by_its_title_and_description() {
        let points = days(&[1.0, 2.0]);
        let svg = chart(&points).svg();
        assert!(svg.starts_with("<svg "));
        assert!(svg.ends_with("</svg>"));
        assert!(svg.contains("role=\"img\""));
        assert!(svg.contains("aria-labelledby=\"calls-title calls-desc\""));
        assert!(svg.contains("<title id=\"calls-title\">Calls per day</title>"));
        assert!(svg.contains("<desc id=\"calls-desc\">Calls per day, 2 values"));
        assert!(!svg.contains("style"), "{svg}");
        assert_eq!(safe_id("1 a/b"), "chart-1-a-b");
    }

    #[test]
    fn an_empty_series_says_so() {
        let c = chart(&[]);
        assert_eq!(c.summary(), "Calls per day: no data.");
        let svg = c.svg();
        assert!(svg.contains(">No data</text>"));
        assert!(bar_heights(&svg).is_empty());
        let mut line = chart(&[]);
        line.kind = Kind::Line;
        assert!(!line.svg().contains("<polyline"));
    }

    #[test]
    fn a_single_point_is_drawn_and_described() {
        let points = days(&[1234.0]);
        let c = chart(&points);
        assert_eq!(c.summary(), "Calls per day: 1,234 for 1 November 2026.");
        assert_eq!(bar_heights(&c.svg()).len(), 1);
        let mut line = chart(&points);
        line.kind = Kind::Line;
        let svg = line.svg();
        assert!(!svg.contains("<polyline"), "one point needs no line");
        assert_eq!(svg.matches("<circle").count(), 1);
    }

    #[test]
    fn bars_scale_to_a_round_top() {
        let points = days(&[0.0, 50.0, 100.0, 180.0]);
        let svg = chart(&points).svg();
        // 180 rounds up to 200: the plot is 240 high, so 100 is 120 and 180 is 216.
        let heights = bar_heights(&svg);
        assert_eq!(heights, vec![0.0, 60.0, 120.0, 216.0]);
        assert!(svg.contains(">200</text>"));
        assert_eq!(nice_ceiling(0.3), 0.5);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(1000.0), 1000.0);
        assert_eq!(nice_ceiling(0.0), 1.0);
    }

    #[test]
    fn counts_have_whole_steps_and_a_fixed_top_is_kept() {
        let points = days(&[1.0, 0.0]);
        let svg = chart(&points).svg();
        for tick in ["0", "1", "2", "3", "4", "5"] {
            assert!(svg.contains(&format!(">{tick}</text>")), "{tick}: {svg}");
        }
        let points = vec![("a".to_string(), 50.0), ("b".to_string(), 100.0)];
        let mut c = chart(&points);
        c.kind = Kind::Line;
        c.format = percent;
        c.y_max = Some(100.0);
        c.whole = false;
        let svg = c.svg();
        assert!(svg.contains(">100%</text>"));
        assert!(svg.contains("<polyline"));
        assert_eq!(svg.matches("<circle").count(), 2);
    }

    #[test]
    fn huge_and_odd_values_stay_on_the_chart() {
        let points = days(&[9.2e18, f64::NAN, f64::INFINITY, -5.0]);
        let svg = chart(&points).svg();
        let heights = bar_heights(&svg);
        assert_eq!(heights.len(), 4);
        assert!(
            heights.iter().all(|h| (0.0..=240.0).contains(h)),
            "{heights:?}"
        );
        assert!(svg.contains(">10,000,000,000,000,000,000</text>"), "{svg}");
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        assert_eq!(grouped(1234567.0), "1,234,567");
        assert_eq!(grouped(-1234.0), "-1,234");
        assert_eq!(grouped(999.0), "999");
        assert_eq!(grouped(f64::NAN), "0");
    }

    #[test]
    fn the_text_alternative_names_the_range_and_extremes() {
        let points = days(&[5.0, 1234.0, 0.0, 1234.0, 7.0]);
        assert_eq!(
            chart(&points).summary(),
            "Calls per day, 5 values from 1 November 2026 to 5 November 2026: \
             highest 1,234 (2 November 2026), lowest 0 (3 November 2026)."
        );
    }

    #[test]
    fn long_series_label_only_what_fits() {
        let points = days(&[1.0; 365]);
        let svg = chart(&points).svg();
        let labels = svg.matches("text-anchor=\"middle\">").count();
        assert!(labels < 40, "{labels} labels");
        assert_eq!(bar_heights(&svg).len(), 365);
        let long = vec![("x".repeat(100), 1.0)];
        assert!(chart(&long).svg().contains(&format!("{}…", "x".repeat(23))));
    }
}
