//! Operator commands: what a person runs against a pipeline, as opposed to the services that
//! are the pipeline. `main.rs` calls them; no service does.
//!
//! - [`status`]: the on-call view from both services' metrics;
//! - [`topics`]: `topics check [--create]`;
//! - [`loadgen`]: synthetic Claude Code and Cowork traffic;
//! - [`redrive`]: dead letters back to their topic;
//! - [`keys`]: create, list and revoke API keys;
//! - [`database`]: `migrate` and `forget`;
//! - [`readers`]: per-tenant read-only ClickHouse users (`readers create | list | revoke | sync`);
//! - [`directory`]: the user directory (`directory import | list`);
//! - [`budgets`]: monthly budgets (`budgets set | list | remove`).

pub mod budgets;
pub mod database;
pub mod directory;
pub mod keys;
pub mod loadgen;
pub mod readers;
pub mod redrive;
pub mod status;
pub mod topics;

/// Rows under a header, in columns two spaces apart, each as wide as its widest cell.
pub fn table<const N: usize>(header: &[String; N], rows: &[[String; N]]) -> String {
    let mut widths = header.each_ref().map(|h| h.chars().count());
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(header).chain(rows) {
        let cells: Vec<String> = r.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn tables_align_their_columns() {
        let header = ["a", "bb"].map(String::from);
        let rows = [["xyz".to_string(), "1".to_string()], ["é".to_string(), String::new()]];
        assert_eq!(super::table(&header, &rows), "a    bb\nxyz  1\né\n");
    }
}
