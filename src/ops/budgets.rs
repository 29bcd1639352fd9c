//! `cowork-ingest budgets set | list | remove`: monthly budgets in USD
//! ([`crate::clickhouse::budgets`]) as a person edits them.

use crate::clickhouse::budgets::{self, Budget, Scope, Usd};
use crate::clickhouse::schema;
use crate::clickhouse::store::Store;
use crate::config::Config;

/// `the monthly budget of team "payments" in tenant acme`.
fn what(tenant: &str, scope: Scope, value: &str) -> String {
    match scope {
        Scope::Tenant => format!("the monthly budget of tenant {tenant}"),
        _ => format!("the monthly budget of {scope} {value:?} in tenant {tenant}"),
    }
}

/// Sets a budget, saying what it replaced.
pub async fn set(config: &Config, tenant: &str, scope: Scope, value: Option<&str>, monthly: Usd) -> anyhow::Result<()> {
    let store = Store::new(&config.clickhouse);
    schema::check(&store).await?;
    let before = budgets::set(&store, tenant, scope, value, monthly).await?;
    let value = budgets::scope_value(scope, value)?;
    let was = match before {
        Some(b) => format!(" (was {} USD)", b.monthly),
        None => " (new)".to_string(),
    };
    eprintln!("set {} to {monthly} USD{was}", what(tenant.trim(), scope, &value));
    Ok(())
}

/// Prints the live budgets, of one tenant or of all.
pub async fn list(config: &Config, tenant: Option<&str>) -> anyhow::Result<()> {
    let store = Store::new(&config.clickhouse);
    let all = budgets::list(&store, tenant.map(str::trim)).await?;
    let rows: Vec<[String; 5]> = all
        .iter()
        .map(|b: &Budget| {
            [
                b.tenant.clone(),
                b.scope.to_string(),
                if b.scope_value.is_empty() {
                    "-".into()
                } else {
                    b.scope_value.clone()
                },
                b.monthly.to_string(),
                b.updated_at.clone(),
            ]
        })
        .collect();
    let header = ["tenant", "scope", "value", "monthly_usd", "updated_at"].map(String::from);
    print!("{}", super::table(&header, &rows));
    Ok(())
}

/// Removes a budget; refused when there is none.
pub async fn remove(config: &Config, tenant: &str, scope: Scope, value: Option<&str>) -> anyhow::Result<()> {
    let store = Store::new(&config.clickhouse);
    schema::check(&store).await?;
    let gone = budgets::remove(&store, tenant, scope, value).await?;
    eprintln!(
        "removed {} ({} USD)",
        what(&gone.tenant, gone.scope, &gone.scope_value),
        gone.monthly
    );
    Ok(())
}
