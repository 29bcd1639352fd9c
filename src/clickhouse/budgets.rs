//! Budgets (`budgets`, migration 005): monthly spending limits in USD, for a whole tenant, a
//! team, a cost center or one user, and how the month's spend stands against them.
//!
//! `cowork-ingest budgets set | list | remove` edit the table: a set inserts a new version of
//! the budget, a remove a tombstone (`deleted = 1`); readers take `budgets FINAL WHERE deleted
//! = 0`. The consumer's rollup refresher [`evaluate`]s every live budget against the month's
//! spend in `cost_daily` and exports the result as gauges (`cowork_budget_*`), which the
//! Prometheus rules `BudgetAt80Percent` and `BudgetExceeded` alert on.
//!
//! ```text
//!   spend      = sum(cost_daily.cost_usd) over the UTC month so far, of the budget's scope:
//!                tenant: all of it   team: team = V   cost_center: cost_center = V
//!                user: user_identity = V
//!   projected  = spend / (time elapsed in the month / length of the month), at least one hour
//!                elapsed: the linear month-end projection
//!   ratios     = spend / monthly_usd, projected / monthly_usd
//! ```

use super::erasure::quote;
use super::rollups;
use super::store::{Store, StoreError};

/// The table's name.
pub const TABLE: &str = "budgets";

/// The largest amount `Decimal(18, 2)` holds, in cents.
pub const MAX_CENTS: u64 = 999_999_999_999_999_999;

/// The projection counts at least this much of the month as elapsed, so that spend in the
/// first minutes of a month does not project to absurd figures.
pub const MIN_ELAPSED_S: f64 = 3600.0;

/// What a budget limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Scope {
    /// All of the tenant's spend (no value).
    Tenant,
    /// The spend of one team (`cost_daily.team`).
    Team,
    /// The spend of one cost center (`cost_daily.cost_center`).
    #[value(name = "cost_center")]
    CostCenter,
    /// The spend of one person (`cost_daily.user_identity`).
    User,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Tenant, Scope::Team, Scope::CostCenter, Scope::User];

    /// The value stored in `budgets.scope` and exported as the `scope` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Tenant => "tenant",
            Scope::Team => "team",
            Scope::CostCenter => "cost_center",
            Scope::User => "user",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The `cost_daily` column a budget of this scope limits the values of (none for a whole
    /// tenant).
    pub fn column(self) -> Option<&'static str> {
        match self {
            Scope::Tenant => None,
            Scope::Team => Some("team"),
            Scope::CostCenter => Some("cost_center"),
            Scope::User => Some("user_identity"),
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A budget amount in whole cents: more than 0, at most two decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Usd(u64);

impl Usd {
    /// `1500`, `1500.5` or `1500.50`; refuses signs, exponents, thousands separators, a third
    /// decimal, 0 and amounts past `Decimal(18, 2)`, with a sentence that says which.
    pub fn parse(text: &str) -> Result<Usd, String> {
        let t = text.trim();
        let (whole, cents) = t.split_once('.').unwrap_or((t, ""));
        let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(cents) || (t.contains('.') && cents.is_empty()) {
            return Err(format!(
                "{text:?} is not an amount in USD: write digits with at most two decimals, such as 1500 or 1500.50"
            ));
        }
        if cents.len() > 2 {
            return Err(format!(
                "{text:?} has more than two decimals: budgets are in whole cents"
            ));
        }
        let too_large = || format!("{text:?} is larger than a budget can be ({})", Usd(MAX_CENTS));
        let whole: u64 = whole.parse().map_err(|_| too_large())?;
        let cents: u64 = format!("{cents:0<2}").parse().unwrap_or(0);
        let total = whole
            .checked_mul(100)
            .and_then(|w| w.checked_add(cents))
            .ok_or_else(too_large)?;
        if total > MAX_CENTS {
            return Err(too_large());
        }
        if total == 0 {
            return Err(format!("{text:?}: a monthly budget must be more than 0"));
        }
        Ok(Usd(total))
    }

    pub fn cents(self) -> u64 {
        self.0
    }

    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 100.0
    }
}

impl std::fmt::Display for Usd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

/// A live budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    pub tenant: String,
    pub scope: Scope,
    /// The team, cost center or user_identity; empty for scope `tenant`.
    pub scope_value: String,
    pub monthly: Usd,
    /// `YYYY-MM-DD hh:mm:ss`, UTC.
    pub updated_at: String,
}

/// Why a budget edit was refused.
#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the tenant is empty")]
    NoTenant,
    #[error("scope tenant is the whole tenant's spend: leave out --value")]
    ValueForTenant,
    #[error("scope {0} needs --value: the {what} whose spend it limits", what = value_noun(*.0))]
    NoValue(Scope),
    #[error("tenant {tenant} has no budget for {scope}{}", value_suffix(.value))]
    NotFound {
        tenant: String,
        scope: Scope,
        value: String,
    },
}

fn value_noun(scope: Scope) -> &'static str {
    match scope {
        Scope::Tenant => "tenant",
        Scope::Team => "team",
        Scope::CostCenter => "cost center",
        Scope::User => "user_identity",
    }
}

fn value_suffix(value: &str) -> String {
    if value.is_empty() {
        String::new()
    } else {
        format!(" {value:?}")
    }
}

/// The stored `scope_value` of a budget: empty for scope `tenant` (which takes no value), the
/// trimmed value otherwise (which must not be empty).
pub fn scope_value(scope: Scope, value: Option<&str>) -> Result<String, BudgetError> {
    let value = value.map(str::trim).unwrap_or_default();
    match (scope, value.is_empty()) {
        (Scope::Tenant, true) => Ok(String::new()),
        (Scope::Tenant, false) => Err(BudgetError::ValueForTenant),
        (_, true) => Err(BudgetError::NoValue(scope)),
        (_, false) => Ok(value.to_string()),
    }
}

fn parse_budget(row: Vec<String>) -> Option<Budget> {
    let [tenant, scope, scope_value, monthly, updated_at]: [String; 5] = row.try_into().ok()?;
    Some(Budget {
        tenant,
        scope: Scope::parse(&scope)?,
        scope_value,
        monthly: Usd::parse(&monthly).ok()?,
        updated_at,
    })
}

/// Live budgets, of one tenant or of all, by tenant, scope and value.
pub async fn list(store: &Store, tenant: Option<&str>) -> Result<Vec<Budget>, StoreError> {
    let filter = tenant
        .map(|t| format!("tenant = {} AND ", quote(t)))
        .unwrap_or_default();
    let rows = store
        .rows(&format!(
            "SELECT tenant, scope, scope_value, toString(monthly_usd), toString(updated_at) \
             FROM {}.{TABLE} FINAL WHERE {filter}deleted = 0 ORDER BY tenant, scope, scope_value",
            store.database()
        ))
        .await?;
    Ok(rows.into_iter().filter_map(parse_budget).collect())
}

async fn find(store: &Store, tenant: &str, scope: Scope, value: &str) -> Result<Option<Budget>, StoreError> {
    Ok(list(store, Some(tenant))
        .await?
        .into_iter()
        .find(|b| b.scope == scope && b.scope_value == value))
}

async fn write(
    store: &Store,
    tenant: &str,
    scope: Scope,
    value: &str,
    monthly: Usd,
    deleted: u8,
) -> Result<(), StoreError> {
    let (version, server_s) = rollups::version_now(store).await?;
    store
        .execute(&format!(
            "INSERT INTO {}.{TABLE} (tenant, scope, scope_value, monthly_usd, updated_at, version, deleted) \
             VALUES ({}, {}, {}, {monthly}, {}, {version}, {deleted})",
            store.database(),
            quote(tenant),
            quote(scope.as_str()),
            quote(value),
            quote(&super::directory::datetime_text(server_s)),
        ))
        .await
}

/// Sets the monthly budget of a tenant, team, cost center or user (replacing the one it had);
/// returns the budget it replaced.
pub async fn set(
    store: &Store,
    tenant: &str,
    scope: Scope,
    value: Option<&str>,
    monthly: Usd,
) -> Result<Option<Budget>, BudgetError> {
    let tenant = tenant.trim();
    if tenant.is_empty() {
        return Err(BudgetError::NoTenant);
    }
    let value = scope_value(scope, value)?;
    let before = find(store, tenant, scope, &value).await?;
    write(store, tenant, scope, &value, monthly, 0).await?;
    Ok(before)
}

/// Removes a budget (a tombstone); returns it. Refused when there is no such budget.
pub async fn remove(store: &Store, tenant: &str, scope: Scope, value: Option<&str>) -> Result<Budget, BudgetError> {
    let tenant = tenant.trim();
    let value = scope_value(scope, value)?;
    let Some(budget) = find(store, tenant, scope, &value).await? else {
        return Err(BudgetError::NotFound {
            tenant: tenant.to_string(),
            scope,
            value,
        });
    };
    write(store, tenant, scope, &value, budget.monthly, 1).await?;
    Ok(budget)
}

/// The UTC month a moment falls in, and how much of it has passed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Month {
    pub first_day: time::Date,
    /// The first day of the next month.
    pub next_first_day: time::Date,
    /// Elapsed share of the month, in (0, 1]: at least [`MIN_ELAPSED_S`] of it.
    pub elapsed: f64,
}

impl Month {
    pub fn of(now: time::OffsetDateTime) -> Month {
        let now = now.to_offset(time::UtcOffset::UTC);
        let first_day = now.date().replace_day(1).expect("every month has a first day");
        let next_first_day = match first_day.month() {
            time::Month::December => time::Date::from_calendar_date(first_day.year() + 1, time::Month::January, 1),
            m => time::Date::from_calendar_date(first_day.year(), m.next(), 1),
        }
        .expect("the first of the next month is a date");
        let start = first_day.midnight().assume_utc();
        let length = (next_first_day.midnight().assume_utc() - start).as_seconds_f64();
        let elapsed = ((now - start).as_seconds_f64().max(MIN_ELAPSED_S) / length).min(1.0);
        Month {
            first_day,
            next_first_day,
            elapsed,
        }
    }
}

/// Where a budget stands this month.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub tenant: String,
    pub scope: Scope,
    pub scope_value: String,
    /// The monthly budget.
    pub limit_usd: f64,
    /// Spend in the month so far.
    pub spend_usd: f64,
    /// Spend at the end of the month if it goes on at the rate so far.
    pub projected_usd: f64,
}

impl Status {
    pub fn spend_ratio(&self) -> f64 {
        self.spend_usd / self.limit_usd
    }

    pub fn projected_ratio(&self) -> f64 {
        self.projected_usd / self.limit_usd
    }
}

/// The query behind [`evaluate`]: every live budget (of every tenant) with its scope's spend in
/// `month`, from `cost_daily` (each day's newest refresh), as `tenant, scope, scope_value,
/// monthly_usd, spend_usd` text. Each cost_daily row counts once for its tenant, once for its
/// team, once for its cost center and once for its user (the ARRAY JOIN), and only budgeted
/// values are summed. GLOBAL, so that in cluster mode the lookups run once.
pub fn status_sql(database: &str, month: &Month) -> String {
    let (from, to) = (
        quote(&month.first_day.to_string()),
        quote(&month.next_first_day.to_string()),
    );
    let days = format!("day >= toDate({from}) AND day < toDate({to})");
    let live = format!("SELECT tenant, scope, scope_value FROM {database}.{TABLE} FINAL WHERE deleted = 0");
    let scopes: Vec<String> = Scope::ALL.iter().map(|s| quote(s.as_str())).collect();
    let values: Vec<&str> = Scope::ALL.iter().map(|s| s.column().unwrap_or("''")).collect();
    format!(
        "SELECT tenant, scope, scope_value, toString(monthly_usd), toString(spend_usd) \
         FROM (SELECT tenant, scope, scope_value, monthly_usd FROM {database}.{TABLE} FINAL WHERE deleted = 0) AS b \
         GLOBAL ANY LEFT JOIN ( \
             SELECT tenant, scope, scope_value, sum(cost_usd) AS spend_usd \
             FROM {database}.cost_daily \
             ARRAY JOIN [{scopes}] AS scope, [{values}] AS scope_value \
             WHERE {days} \
             AND (tenant, scope, scope_value) GLOBAL IN ({live}) \
             AND (tenant, day, version) GLOBAL IN \
                 (SELECT tenant, day, max(version) FROM {database}.cost_daily WHERE {days} GROUP BY tenant, day) \
             GROUP BY tenant, scope, scope_value \
         ) AS s USING (tenant, scope, scope_value) \
         ORDER BY tenant, scope, scope_value",
        scopes = scopes.join(", "),
        values = values.join(", "),
    )
}

/// Every live budget against its spend in the month of `now` (UTC), with the month-end
/// projection.
pub async fn evaluate(store: &Store, now: time::OffsetDateTime) -> Result<Vec<Status>, StoreError> {
    let month = Month::of(now);
    let rows = store.rows(&status_sql(store.database(), &month)).await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let [tenant, scope, scope_value, monthly, spend]: [String; 5] = r.try_into().ok()?;
            let limit_usd = Usd::parse(&monthly).ok()?.as_f64();
            let spend_usd: f64 = spend.parse().unwrap_or(0.0);
            Some(Status {
                tenant,
                scope: Scope::parse(&scope)?,
                scope_value,
                limit_usd,
                spend_usd,
                projected_usd: spend_usd / month.elapsed,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_whole_cents_above_zero() {
        assert_eq!(Usd::parse("1500").unwrap().cents(), 150_000);
        assert_eq!(Usd::parse(" 1500.5 ").unwrap().to_string(), "1500.50");
        assert_eq!(Usd::parse("0.01").unwrap().cents(), 1);
        assert_eq!(Usd::parse("9999999999999999.99").unwrap().cents(), MAX_CENTS);
        for (bad, says) in [
            ("0", "more than 0"),
            ("0.00", "more than 0"),
            ("-5", "not an amount"),
            ("1e3", "not an amount"),
            ("1,500", "not an amount"),
            ("12.", "not an amount"),
            (".5", "not an amount"),
            ("", "not an amount"),
            ("1.005", "more than two decimals"),
            ("10000000000000000", "larger than a budget can be (9999999999999999.99)"),
            ("99999999999999999999999", "larger than a budget can be"),
        ] {
            let err = Usd::parse(bad).unwrap_err();
            assert!(err.contains(says), "{bad:?}: {err}");
        }
    }

    #[test]
    fn scopes_and_their_values() {
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.as_str()), Some(s));
            assert_eq!(
                <Scope as clap::ValueEnum>::to_possible_value(&s).unwrap().get_name(),
                s.as_str()
            );
        }
        assert_eq!(scope_value(Scope::Tenant, None).unwrap(), "");
        assert_eq!(scope_value(Scope::Team, Some(" payments ")).unwrap(), "payments");
        assert_eq!(
            scope_value(Scope::Tenant, Some("x")).unwrap_err().to_string(),
            "scope tenant is the whole tenant's spend: leave out --value"
        );
        assert_eq!(
            scope_value(Scope::CostCenter, Some("  ")).unwrap_err().to_string(),
            "scope cost_center needs --value: the cost center whose spend it limits"
        );
        let missing = BudgetError::NotFound {
            tenant: "acme".into(),
            scope: Scope::User,
            value: "a@x.com".into(),
        };
        assert_eq!(missing.to_string(), "tenant acme has no budget for user \"a@x.com\"");
    }

    #[test]
    fn the_month_and_its_elapsed_share() {
        let at = |s: &str| time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap();
        let m = Month::of(at("2026-12-04T00:00:00Z"));
        assert_eq!(m.first_day.to_string(), "2026-12-01");
        assert_eq!(m.next_first_day.to_string(), "2027-01-01");
        assert!((m.elapsed - 3.0 / 31.0).abs() < 1e-12);
        let feb = Month::of(at("2027-02-15T00:00:00+02:00"));
        assert_eq!(
            (feb.first_day.to_string(), feb.next_first_day.to_string()),
            ("2027-02-01".into(), "2027-03-01".into())
        );
        assert!(
            (feb.elapsed - (13.0 + 22.0 / 24.0) / 28.0).abs() < 1e-12,
            "UTC: {}",
            feb.elapsed
        );
        let first = Month::of(at("2026-11-01T00:00:05Z"));
        assert!((first.elapsed - 1.0 / (30.0 * 24.0)).abs() < 1e-12, "at least an hour");
    }

    #[test]
    fn one_query_sums_each_scope_of_the_month_for_the_live_budgets() {
        let month = Month::of(time::macros::datetime!(2026-12-04 00:00 UTC));
        let sql = status_sql("db1", &month);
        assert_eq!(
            sql,
            "SELECT tenant, scope, scope_value, toString(monthly_usd), toString(spend_usd) \
             FROM (SELECT tenant, scope, scope_value, monthly_usd FROM db1.budgets FINAL WHERE deleted = 0) AS b \
             GLOBAL ANY LEFT JOIN ( \
                 SELECT tenant, scope, scope_value, sum(cost_usd) AS spend_usd \
                 FROM db1.cost_daily \
                 ARRAY JOIN ['tenant', 'team', 'cost_center', 'user'] AS scope, \
                 ['', team, cost_center, user_identity] AS scope_value \
                 WHERE day >= toDate('2026-12-01') AND day < toDate('2027-01-01') \
                 AND (tenant, scope, scope_value) GLOBAL IN \
                 (SELECT tenant, scope, scope_value FROM db1.budgets FINAL WHERE deleted = 0) \
                 AND (tenant, day, version) GLOBAL IN \
                     (SELECT tenant, day, max(version) FROM db1.cost_daily \
                     WHERE day >= toDate('2026-12-01') AND day < toDate('2027-01-01') GROUP BY tenant, day) \
                 GROUP BY tenant, scope, scope_value \
             ) AS s USING (tenant, scope, scope_value) \
             ORDER BY tenant, scope, scope_value"
        );
    }

    #[test]
    fn ratios_and_the_projection() {
        let s = Status {
            tenant: "acme".into(),
            scope: Scope::Team,
            scope_value: "payments".into(),
            limit_usd: 200.0,
            spend_usd: 170.0,
            projected_usd: 170.0 / 0.5,
        };
        assert_eq!(s.spend_ratio(), 0.85);
        assert_eq!(s.projected_ratio(), 1.7);
    }
}
