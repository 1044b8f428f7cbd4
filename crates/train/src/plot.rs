//! Line charts as SVG (plotters' SVG backend: text is left to the viewer's
//! fonts, so no font or image library is needed).

use std::path::Path;

use plotters::prelude::*;

use crate::error::Error;

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    /// Index into the palette.
    pub color: usize,
}

/// A chart's labels and axes.
#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Logarithmic y axis (non-positive values are left out).
    pub log_y: bool,
    /// Fixed y range; otherwise fitted to the data.
    pub y_range: Option<(f64, f64)>,
    /// Where the legend goes (pick a corner the lines leave empty).
    pub legend: Corner,
}

/// A place for the legend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corner {
    UpperLeft,
    UpperRight,
    MiddleRight,
    LowerLeft,
    LowerRight,
}

impl Corner {
    fn position(self) -> SeriesLabelPosition {
        match self {
            Corner::UpperLeft => SeriesLabelPosition::UpperLeft,
            Corner::UpperRight => SeriesLabelPosition::UpperRight,
            Corner::MiddleRight => SeriesLabelPosition::MiddleRight,
            Corner::LowerLeft => SeriesLabelPosition::LowerLeft,
            Corner::LowerRight => SeriesLabelPosition::LowerRight,
        }
    }
}

/// Tick label text: powers of ten on log axes, else as few decimals as the span needs.
fn tick(v: f64, log: bool, span: f64) -> String {
    if log {
        if (1e-3..1e4).contains(&v.abs()) {
            // Up to 3 significant digits, without trailing zeros: 0.05, 3, 250.
            let digits = (2 - v.abs().log10().floor() as i32).max(0) as usize;
            let t = format!("{v:.digits$}");
            if t.contains('.') { t.trim_end_matches('0').trim_end_matches('.').to_string() } else { t }
        } else {
            format!("{v:.0e}")
        }
    } else if span >= 20.0 {
        format!("{v:.0}")
    } else if span >= 2.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(0xd6, 0x27, 0x28), // red
    RGBColor(0x1f, 0x77, 0xb4), // blue
    RGBColor(0xff, 0x7f, 0x0e), // orange
    RGBColor(0x2c, 0xa0, 0x2c), // green
    RGBColor(0x94, 0x67, 0xbd), // purple
    RGBColor(0x7f, 0x7f, 0x7f), // grey
];

fn plot_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::failed(format!("{}: cannot draw the chart: {e}", path.display()))
}

/// The SVG text of a line chart.
pub fn line_chart_svg(chart: &Chart, series: &[Series]) -> Result<String, String> {
    // Points outside a fixed y range are left out (a line leaving the chart ends there).
    let in_range = |y: f64| chart.y_range.is_none_or(|(lo, hi)| (lo..=hi).contains(&y));
    let usable = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite() && (!chart.log_y || y > 0.0) && in_range(y);
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.points.iter().copied()).filter(usable).collect();
    if all.is_empty() {
        return Err("no finite points to plot".into());
    }
    let (mut x0, mut x1) = all.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.0), b.max(p.0)));
    if x0 == x1 {
        x0 -= 1.0;
        x1 += 1.0;
    }
    let (y0, y1) = chart.y_range.unwrap_or_else(|| {
        let (lo, hi) = all.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.1), b.max(p.1)));
        if chart.log_y {
            (lo / 2.0, hi * 2.0)
        } else {
            let pad = ((hi - lo) * 0.05).max(1e-3);
            (lo - pad, hi + pad)
        }
    });
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 440)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut builder = ChartBuilder::on(&root);
        builder.caption(&chart.title, ("sans-serif", 20)).margin(14).x_label_area_size(46).y_label_area_size(84);
        let (x_span, y_span) = (x1 - x0, y1 - y0);
        let x_fmt = move |v: &f64| tick(*v, false, x_span);
        let y_fmt = move |v: &f64| tick(*v, chart.log_y, y_span);
        macro_rules! draw {
            ($ctx:expr) => {{
                let mut ctx = $ctx;
                ctx.configure_mesh()
                    .x_desc(chart.x_label.as_str())
                    .y_desc(chart.y_label.as_str())
                    .x_label_formatter(&x_fmt)
                    .y_label_formatter(&y_fmt)
                    .light_line_style(RGBColor(0xee, 0xee, 0xee))
                    .draw()
                    .map_err(|e| e.to_string())?;
                for s in series {
                    let color = PALETTE[s.color % PALETTE.len()];
                    let pts: Vec<(f64, f64)> = s.points.iter().copied().filter(usable).collect();
                    ctx.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                        .map_err(|e| e.to_string())?
                        .label(s.label.as_str())
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
                    if pts.len() <= 40 {
                        ctx.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
                            .map_err(|e| e.to_string())?;
                    }
                }
                ctx.configure_series_labels()
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK)
                    .position(chart.legend.position())
                    .draw()
                    .map_err(|e| e.to_string())?;
            }};
        }
        if chart.log_y {
            draw!(builder.build_cartesian_2d(x0..x1, (y0..y1).log_scale()).map_err(|e| e.to_string())?);
        } else {
            draw!(builder.build_cartesian_2d(x0..x1, y0..y1).map_err(|e| e.to_string())?);
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// Writes a line chart to `path` (atomically).
pub fn line_chart(path: &Path, chart: &Chart, series: &[Series]) -> Result<(), Error> {
    let svg = line_chart_svg(chart, series).map_err(|e| plot_err(path, e))?;
    crate::error::write_file(path, svg.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_an_svg_with_title_and_legend_and_skips_unusable_points() {
        let chart = Chart {
            title: "t".into(),
            x_label: "k".into(),
            y_label: "norm".into(),
            log_y: true,
            y_range: None,
            legend: Corner::LowerLeft,
        };
        let series = vec![
            Series { label: "RNN".into(), points: vec![(0.0, 1.0), (1.0, 0.1), (2.0, 0.0), (3.0, f64::NAN)], color: 0 },
            Series { label: "LSTM".into(), points: vec![(0.0, 1.0), (1.0, 0.9)], color: 1 },
        ];
        let svg = line_chart_svg(&chart, &series).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains(">\nRNN\n</text>") && svg.contains(">\nLSTM\n</text>"), "legend labels");
        let empty = vec![Series { label: "x".into(), points: vec![(0.0, -1.0)], color: 0 }];
        assert!(line_chart_svg(&chart, &empty).is_err());
    }
}
