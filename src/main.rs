//! The `cowork-ingest` binary: parses flags, installs logging, and calls into the library.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use cowork_ingest::clickhouse::budgets;
use cowork_ingest::config::{Config, DEFAULT_DEV_PARTITIONS};
use cowork_ingest::kafka::dev_broker;
use cowork_ingest::ops::{self, loadgen};
use cowork_ingest::{consumer, edge, keys};

#[derive(Parser)]
#[command(
    name = "cowork-ingest",
    version,
    about = "Ingest pipeline for Claude Cowork and Claude Code telemetry"
)]
struct Cli {
    /// TOML configuration file (see README, "Configuration").
    #[arg(long, global = true, env = "COWORK_CONFIG")]
    config: Option<PathBuf>,
    /// Override one setting: `--set edge.max_body_bytes=8388608`. Repeatable.
    #[arg(long = "set", global = true, value_name = "SECTION.FIELD=VALUE")]
    overrides: Vec<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve OTLP (HTTP 4318, gRPC 4317) and publish raw payloads to Kafka.
    Edge,
    /// Consume raw payloads from Kafka and write them into ClickHouse (a consumer group member).
    Consume,
    /// Apply the ClickHouse migrations not applied yet (`schemas/`). Running it again is a no-op.
    Migrate {
        /// Print the DDL for `clickhouse.database` instead of applying it: what the configured
        /// server gets, or a server of `--server-version`.
        #[arg(long)]
        print_sql: bool,
        /// With `--print-sql`: render for this server version (such as 18.16 or 24.8) without
        /// connecting.
        #[arg(long, requires = "print_sql")]
        server_version: Option<String>,
    },
    /// The rollup tables the dashboards read.
    Rollups {
        #[command(subcommand)]
        command: RollupsCommand,
    },
    /// Delete one user's rows of one tenant from every table (GDPR erasure), and report them.
    Forget {
        #[arg(long)]
        tenant: String,
        /// The person: an email (`user_email`) or any other `user_identity` (an `enduser.id`,
        /// a `user.account_id`, a `process.owner`, a `user.id`).
        #[arg(long)]
        user: String,
    },
    /// Re-publish dead letters to the topic they came from, after a fix.
    Redrive {
        /// Stop after this many messages.
        #[arg(long)]
        limit: Option<u64>,
    },
    /// The on-call view: lag per partition, rates, last insert, dead letters, the edge's traffic.
    Status {
        /// The edge's metrics. Default: `edge.admin_listen` on this host.
        #[arg(long)]
        edge_metrics: Option<String>,
        /// The consumers' metrics, one URL per group member (repeat the flag, or separate with
        /// commas). Default: `consumer.admin_listen` on this host.
        #[arg(long, value_delimiter = ',')]
        consumer_metrics: Vec<String>,
        /// Seconds between the two scrapes the rates come from.
        #[arg(long, default_value_t = 2.0)]
        interval: f64,
    },
    /// Send synthetic Claude Code and Cowork traffic to an OTLP endpoint (demos and load runs).
    Loadgen {
        /// `http://host:4318` for http/*, `http://host:4317` for grpc. Default: this host's edge.
        #[arg(long)]
        endpoint: Option<String>,
        #[arg(long, value_enum, default_value = "http/protobuf")]
        protocol: loadgen::Protocol,
        /// Compress requests with gzip.
        #[arg(long)]
        gzip: bool,
        /// An ingest key (`cowork-ingest keys create`).
        #[arg(long, env = "OTLP_API_KEY", hide_env_values = true)]
        api_key: String,
        /// Events per second to aim at; 0 sends as fast as the server answers.
        #[arg(long, default_value_t = 0.0)]
        rate: f64,
        /// Stop after this many seconds.
        #[arg(long)]
        duration: Option<f64>,
        /// Stop after this many sessions (default 100 unless --duration is given).
        #[arg(long)]
        sessions: Option<u64>,
        /// Log records per request.
        #[arg(long, default_value_t = 100)]
        batch: usize,
        /// Requests in flight.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Attribute styles, one per session in turn.
        #[arg(long, value_enum, value_delimiter = ',', default_value = "v2,strings,last9,legacy")]
        styles: Vec<loadgen::Style>,
        /// What to send: `logs` (the events), `metrics` (Claude Code's counters for the same
        /// activity, one DELTA export per session), `traces` (its spans).
        #[arg(long, value_delimiter = ',', default_value = "logs", value_parser = parse_signal)]
        signals: Vec<cowork_ingest::otlp::Signal>,
    },
    /// Check the pipeline's Kafka topics against this configuration's limits.
    Topics {
        #[command(subcommand)]
        command: TopicsCommand,
    },
    /// Manage API keys in the key file (`edge.keys_path`).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage per-tenant read-only ClickHouse users (row policies; ClickHouse 20.4 or later).
    Readers {
        #[command(subcommand)]
        command: ReadersCommand,
    },
    /// The user directory (identity to team, department, cost center, manager) that the
    /// rollups fall back to when the telemetry carries no team.
    Directory {
        #[command(subcommand)]
        command: DirectoryCommand,
    },
    /// Monthly budgets in USD, for a tenant, a team, a cost center or a user. The consumer
    /// exports their month-to-date spend as gauges (`cowork_budget_*`) that Prometheus alerts on.
    Budgets {
        #[command(subcommand)]
        command: BudgetsCommand,
    },
    /// Run an in-memory Kafka-protocol broker (librdkafka's mock cluster). Not durable.
    DevBroker {
        /// Number of brokers.
        #[arg(long, default_value_t = 1)]
        brokers: i32,
        /// Partitions per topic.
        #[arg(long, default_value_t = DEFAULT_DEV_PARTITIONS)]
        partitions: i32,
        /// Also write the bootstrap address to this file.
        #[arg(long)]
        bootstrap_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum RollupsCommand {
    /// Re-aggregate the rollups from the base tables: after a backfill, a redrive or an upgrade.
    Rebuild {
        /// From this day on (YYYY-MM-DD). Default: all of history.
        #[arg(long)]
        since: Option<String>,
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
}

#[derive(Subcommand)]
enum TopicsCommand {
    /// Existence, partitions, replication, min.insync.replicas, retention, max.message.bytes.
    /// Exits non-zero when a topic cannot do its job.
    Check {
        /// Create the missing topics first (replication min(3, brokers)).
        #[arg(long)]
        create: bool,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key. Its secret is printed once, on stdout's last line.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long, value_enum)]
        role: keys::Role,
        #[arg(long, value_enum, default_value = "org")]
        kind: keys::Kind,
        /// YYYY-MM-DD (expires at 00:00 UTC that day) or an RFC 3339 time.
        #[arg(long, value_parser = keys::parse_expiry)]
        expires: Option<time::OffsetDateTime>,
        /// A default attribute, NAME=VALUE (repeatable): the consumer applies it where the
        /// telemetry has no attribute of that name, e.g. `--attr team=payments`. NAME is 1-64
        /// characters of [A-Za-z0-9._-]; VALUE is 1-256 characters.
        #[arg(long = "attr", value_name = "NAME=VALUE", value_parser = keys::parse_attribute)]
        attributes: Vec<(String, String)>,
    },
    /// List keys (never their secrets).
    List,
    /// Revoke a key by id. The edge stops accepting it within `edge.keys_reload_ms`.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum ReadersCommand {
    /// Create the user `cowork_reader_<TENANT>`: SELECT on every table and view of
    /// `clickhouse.database` with a `tenant` column, only that tenant's rows, a memory limit per
    /// query. A generated password is printed once, on stdout's last line.
    Create {
        #[arg(long)]
        tenant: String,
        /// Memory one query may use; the reader cannot raise it.
        #[arg(long, default_value_t = ops::readers::DEFAULT_MAX_MEMORY_BYTES)]
        max_memory_bytes: u64,
        /// Take the password from this file (its first line) instead of generating one.
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// An address or network the reader may connect from (`10.0.0.0/8`). Repeatable;
        /// default: any.
        #[arg(long = "host-ip")]
        hosts: Vec<String>,
    },
    /// List readers and the tables their filters cover.
    List,
    /// Remove a tenant's reader: its row policies, then the user.
    Revoke {
        #[arg(long)]
        tenant: String,
    },
    /// Point every reader at the tables that have a `tenant` column now (run after `migrate`).
    Sync,
}

#[derive(Subcommand)]
enum DirectoryCommand {
    /// Replace a tenant's directory with a CSV file (header
    /// `user_identity,team,department,cost_center,manager`, RFC 4180 quoting). Identities no
    /// longer in the file are removed; the tenant's rollups are then refreshed. Prints the
    /// number of entries added, updated, removed and unchanged.
    Import {
        /// The CSV file, UTF-8.
        file: PathBuf,
        #[arg(long)]
        tenant: String,
    },
    /// List a tenant's directory.
    List {
        #[arg(long)]
        tenant: String,
    },
}

/// Which budget: `--tenant`, `--scope` and, but for scope tenant, `--value`.
#[derive(clap::Args)]
struct BudgetOf {
    #[arg(long)]
    tenant: String,
    #[arg(long, value_enum)]
    scope: budgets::Scope,
    /// The team, cost center or user_identity (not for scope tenant).
    #[arg(long)]
    value: Option<String>,
}

#[derive(Subcommand)]
enum BudgetsCommand {
    /// Set (or replace) a monthly budget.
    Set {
        #[command(flatten)]
        of: BudgetOf,
        /// USD per calendar month (UTC), more than 0, at most two decimals: 1500 or 1500.50.
        #[arg(long, value_parser = budgets::Usd::parse)]
        monthly_usd: budgets::Usd,
    },
    /// List the budgets, of one tenant or of all.
    List {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Remove a budget.
    Remove {
        #[command(flatten)]
        of: BudgetOf,
    },
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,rdkafka=warn"));
    let json = std::env::var("COWORK_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Cancels the token on SIGTERM or Ctrl-C.
fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("shutdown requested");
        t.cancel();
    });
    token
}

/// Keeps the allocator's footprint close to what the edge's byte budget allows. glibc raises its
/// mmap threshold after large frees and keeps one arena per thread, so a burst of multi-MiB
/// request buffers would otherwise stay resident long after they were freed. A fixed 1 MiB
/// threshold returns large buffers to the OS on free; two arenas cap fragmentation.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator parameters; called before any other thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn main() -> anyhow::Result<()> {
    tune_allocator();
    let cli = Cli::parse();
    init_logging();
    let config = Config::load(cli.config.as_deref(), &cli.overrides)?;
    match cli.command {
        Command::Edge => runtime()?.block_on(async {
            let listeners = edge::Listeners::bind(&config.edge)
                .await
                .context("binding the edge's ports")?;
            edge::run(listeners, config, shutdown_on_signal()).await?;
            anyhow::Ok(())
        }),
        Command::Consume => runtime()?.block_on(async {
            let admin = tokio::net::TcpListener::bind(config.consumer.admin_listen)
                .await
                .with_context(|| format!("binding the consumer's admin port {}", config.consumer.admin_listen))?;
            consumer::run(config, admin, shutdown_on_signal()).await?;
            anyhow::Ok(())
        }),
        Command::Migrate {
            print_sql: true,
            server_version,
        } => runtime()?.block_on(ops::database::print_sql(&config, server_version.as_deref())),
        Command::Migrate { print_sql: false, .. } => runtime()?.block_on(ops::database::migrate(&config)),
        Command::Rollups {
            command: RollupsCommand::Rebuild { since, tenant },
        } => runtime()?.block_on(ops::database::rebuild_rollups(
            &config,
            since.as_deref(),
            tenant.as_deref(),
        )),
        Command::Forget { tenant, user } => runtime()?.block_on(ops::database::forget(&config, &tenant, &user)),
        Command::Redrive { limit } => {
            let n = runtime()?.block_on(ops::redrive::redrive(&config, limit))?;
            eprintln!("re-published {n} dead letter(s) from {}", config.consumer.dlq_topic);
            Ok(())
        }
        Command::Status {
            edge_metrics,
            consumer_metrics,
            interval,
        } => {
            let local = |addr: std::net::SocketAddr| format!("http://127.0.0.1:{}/metrics", addr.port());
            let edge = edge_metrics.unwrap_or_else(|| local(config.edge.admin_listen));
            let consumers = if consumer_metrics.is_empty() {
                vec![local(config.consumer.admin_listen)]
            } else {
                consumer_metrics
            };
            let text = runtime()?.block_on(ops::status::status(
                &edge,
                &consumers,
                std::time::Duration::from_secs_f64(interval.max(0.1)),
            ));
            print!("{text}");
            Ok(())
        }
        Command::Loadgen {
            endpoint,
            protocol,
            gzip,
            api_key,
            rate,
            duration,
            sessions,
            batch,
            concurrency,
            seed,
            styles,
            signals,
        } => {
            use loadgen::Protocol;
            let port = match protocol {
                Protocol::Grpc => config.edge.grpc_listen.port(),
                _ => config.edge.http_listen.port(),
            };
            let options = loadgen::Options {
                endpoint: endpoint.unwrap_or_else(|| format!("http://127.0.0.1:{port}")),
                protocol,
                gzip,
                api_key,
                sessions: sessions.unwrap_or(if duration.is_some() { 0 } else { 100 }),
                duration: duration.map(std::time::Duration::from_secs_f64),
                rate,
                batch,
                concurrency,
                seed,
                styles,
                progress: Some(std::time::Duration::from_secs(5)),
                signals,
            };
            let report = runtime()?.block_on(loadgen::run(options))?;
            println!("{report}");
            anyhow::ensure!(
                report.failed_events == 0,
                "the server refused or lost {} events",
                report.failed_events
            );
            Ok(())
        }
        Command::Topics {
            command: TopicsCommand::Check { create },
        } => {
            let (report, ok) = runtime()?.block_on(ops::topics::check(&config, create))?;
            print!("{report}");
            anyhow::ensure!(ok, "some topics cannot do their job (see above)");
            Ok(())
        }
        Command::Keys { command } => run_keys(&config, command),
        Command::Readers { command } => runtime()?.block_on(run_readers(&config, command)),
        Command::Directory { command } => runtime()?.block_on(run_directory(&config, command)),
        Command::Budgets { command } => runtime()?.block_on(run_budgets(&config, command)),
        Command::DevBroker {
            brokers,
            partitions,
            bootstrap_file,
        } => {
            let cluster = dev_broker::start(brokers, partitions, &dev_broker::topics(&config))?;
            let bootstrap = cluster.bootstrap_servers();
            if let Some(path) = bootstrap_file {
                std::fs::write(&path, format!("{bootstrap}\n"))
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            eprintln!("dev broker: in-memory Kafka-protocol broker (NOT durable: its data is lost when it stops)");
            println!("{bootstrap}");
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(async { shutdown_on_signal().cancelled().await });
            drop(cluster);
            Ok(())
        }
    }
}

fn run_keys(config: &Config, command: KeysCommand) -> anyhow::Result<()> {
    let path = &config.edge.keys_path;
    match command {
        KeysCommand::Create {
            tenant,
            role,
            kind,
            expires,
            attributes,
        } => ops::keys::create(path, &tenant, role, kind, expires, &attributes),
        KeysCommand::List => ops::keys::list(path),
        KeysCommand::Revoke { id } => ops::keys::revoke(path, &id),
    }
}

async fn run_directory(config: &Config, command: DirectoryCommand) -> anyhow::Result<()> {
    match command {
        DirectoryCommand::Import { file, tenant } => ops::directory::import(config, &file, &tenant).await,
        DirectoryCommand::List { tenant } => ops::directory::list(config, &tenant).await,
    }
}

async fn run_budgets(config: &Config, command: BudgetsCommand) -> anyhow::Result<()> {
    match command {
        BudgetsCommand::Set { of, monthly_usd } => {
            ops::budgets::set(config, &of.tenant, of.scope, of.value.as_deref(), monthly_usd).await
        }
        BudgetsCommand::List { tenant } => ops::budgets::list(config, tenant.as_deref()).await,
        BudgetsCommand::Remove { of } => ops::budgets::remove(config, &of.tenant, of.scope, of.value.as_deref()).await,
    }
}

async fn run_readers(config: &Config, command: ReadersCommand) -> anyhow::Result<()> {
    use cowork_ingest::clickhouse::store::Store;
    use ops::readers;
    let store = Store::new(&config.clickhouse);
    match command {
        ReadersCommand::Create {
            tenant,
            max_memory_bytes,
            password_file,
            hosts,
        } => {
            let password = match password_file {
                Some(path) => Some(
                    std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                ),
                None => None,
            };
            let generated = password.is_none();
            let options = readers::ReaderOptions {
                max_memory_bytes,
                hosts,
            };
            let new = readers::create(&store, &tenant, password, &options).await?;
            eprintln!(
                "created reader {} for tenant {tenant}: {} table(s) of database {} ({}), {max_memory_bytes} bytes per query",
                new.user,
                new.tables.len(),
                store.database(),
                new.tables.join(", ")
            );
            if generated {
                eprintln!("its password, below, is shown only once");
                println!("{}", new.password);
            }
            Ok(())
        }
        ReadersCommand::List => {
            println!("{:<20}  {:<34}  tables", "tenant", "user");
            for r in readers::list(&store).await? {
                println!("{:<20}  {:<34}  {}", r.tenant, r.user, r.tables.join(","));
            }
            Ok(())
        }
        ReadersCommand::Revoke { tenant } => {
            readers::revoke(&store, &tenant).await?;
            eprintln!("revoked the reader of tenant {tenant}");
            Ok(())
        }
        ReadersCommand::Sync => {
            let n = readers::sync(&store).await?;
            eprintln!(
                "{n} reader(s) now cover the tenant tables of database {}",
                store.database()
            );
            Ok(())
        }
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new()
}

/// A signal name for `loadgen --signals`.
fn parse_signal(name: &str) -> Result<cowork_ingest::otlp::Signal, String> {
    cowork_ingest::otlp::Signal::parse(name).ok_or_else(|| format!("{name:?} is not a signal: logs, metrics or traces"))
}
