//! The evaluation report as one self-contained HTML page: metrics tables, pictures and the
//! worst mistakes. Pictures are PNG files beside the page (no CDN, nothing fetched), so the
//! folder can be copied or archived as it is.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::EvalError;

/// One part of the page, in order.
pub enum Block {
    /// A section title.
    Heading(String),
    /// A paragraph.
    Text(String),
    /// A table with a header row; `id` lets tests and readers find it.
    Table {
        /// The element id.
        id: String,
        /// Column names.
        header: Vec<String>,
        /// Cells, row by row.
        rows: Vec<Vec<String>>,
    },
    /// A PNG beside the page.
    Image {
        /// Path relative to the page.
        file: String,
        /// What the picture shows.
        caption: String,
    },
    /// Mistaken pairs: a strip picture and its caption lines each.
    Pairs {
        /// The element id.
        id: String,
        /// The pairs, worst first.
        items: Vec<PairItem>,
    },
}

/// One mistaken pair on the page.
pub struct PairItem {
    /// Its picture, relative to the page (empty when it could not be drawn).
    pub file: String,
    /// Caption lines: distance, file names.
    pub lines: Vec<String>,
}

/// Writes `DIR/index.html` and returns its path.
pub fn write(dir: &Path, title: &str, blocks: &[Block]) -> Result<PathBuf, EvalError> {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\n<style>{STYLE}</style></head>\n<body>\n<h1>{t}</h1>\n",
        t = escape(title)
    );
    for block in blocks {
        match block {
            Block::Heading(text) => {
                let _ = writeln!(html, "<h2>{}</h2>", escape(text));
            }
            Block::Text(text) => {
                let _ = writeln!(html, "<p>{}</p>", escape(text));
            }
            Block::Table { id, header, rows } => {
                let _ = write!(html, "<table id=\"{}\"><tr>", escape(id));
                for h in header {
                    let _ = write!(html, "<th>{}</th>", escape(h));
                }
                html.push_str("</tr>\n");
                for row in rows {
                    html.push_str("<tr>");
                    for cell in row {
                        let _ = write!(html, "<td>{}</td>", escape(cell));
                    }
                    html.push_str("</tr>\n");
                }
                html.push_str("</table>\n");
            }
            Block::Image { file, caption } => {
                let _ = writeln!(
                    html,
                    "<figure><img src=\"{f}\" alt=\"{c}\"><figcaption>{c}</figcaption></figure>",
                    f = escape(file),
                    c = escape(caption)
                );
            }
            Block::Pairs { id, items } => {
                let _ = writeln!(html, "<div class=\"pairs\" id=\"{}\">", escape(id));
                if items.is_empty() {
                    html.push_str("<p>none</p>\n");
                }
                for item in items {
                    let _ = write!(html, "<figure class=\"pair\"><img src=\"{}\" alt=\"pair\"><figcaption>", escape(&item.file));
                    let lines: Vec<String> = item.lines.iter().map(|l| escape(l)).collect();
                    html.push_str(&lines.join("<br>"));
                    html.push_str("</figcaption></figure>\n");
                }
                html.push_str("</div>\n");
            }
        }
    }
    html.push_str("</body></html>\n");
    let path = dir.join("index.html");
    std::fs::write(&path, html).map_err(|e| EvalError::io(&path, e))?;
    Ok(path)
}

const STYLE: &str = "body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}\
th{background:#f3f3f3}figure{margin:1em 0}figure img{max-width:100%}figcaption{font-size:90%;color:#444}\
.pair{border-top:1px solid #eee;padding-top:.5em}";

/// HTML text escaping: file names and labels come from the user's disk.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_escapes_what_comes_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = [
            Block::Table { id: "metrics".into(), header: vec!["a<b".into()], rows: vec![vec!["\"x\" & y".into()]] },
            Block::Pairs { id: "false-accepts".into(), items: vec![PairItem { file: "p/1.png".into(), lines: vec!["<script>".into(), "d 0.5".into()] }] },
            Block::Pairs { id: "false-rejects".into(), items: vec![] },
        ];
        let path = write(dir.path(), "t & t", &blocks).unwrap();
        let html = std::fs::read_to_string(path).unwrap();
        assert!(html.contains("<title>t &amp; t</title>"));
        assert!(html.contains("<th>a&lt;b</th>") && html.contains("<td>&quot;x&quot; &amp; y</td>"));
        assert!(html.contains("&lt;script&gt;<br>d 0.5") && !html.contains("<script>"));
        assert!(html.contains("<div class=\"pairs\" id=\"false-rejects\">\n<p>none</p>"));
    }
}
