//! Command-line arguments.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Tessera: a unified backend for heterogeneous device data.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, about)]
pub struct Cli {
    /// Log output format.
    #[arg(long, global = true, value_enum, default_value = "text", env = "TESSERA_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every role in one process on the embedded log and an embedded PostgreSQL.
    Serve(ServeArgs),
    /// Run one role alone against a log URL and an external PostgreSQL.
    Run(RunArgs),
    /// Check, test or scaffold plugin packages.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Print a topic's records as JSON lines.
    Replay(ReplayArgs),
    /// Projector maintenance.
    #[command(subcommand)]
    Projector(ProjectorCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

/// Where the data lives, shared by commands that use the embedded default.
#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// Data directory (log, embedded PostgreSQL, plugin state, admin token).
    #[arg(long, default_value = "./tessera-data", env = "TESSERA_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Use this PostgreSQL instead of starting one under the data directory.
    #[arg(long, env = "TESSERA_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Topic prefix.
    #[arg(long, default_value = "tessera.", env = "TESSERA_TOPIC_PREFIX")]
    pub topic_prefix: String,
}

/// Arguments of `serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Data and database.
    #[command(flatten)]
    pub data: DataArgs,
    /// Address of the HTTP listener (API, GraphQL, dashboard).
    #[arg(long, default_value = "127.0.0.1:8080", env = "TESSERA_LISTEN")]
    pub listen: SocketAddr,
    /// Plugin packages, or directories of packages, to run (repeatable). Default: <data-dir>/plugins.
    #[arg(long = "plugins", env = "TESSERA_PLUGINS", value_delimiter = ',')]
    pub plugins: Vec<PathBuf>,
    /// Also run the demo simulator plugin.
    #[arg(long)]
    pub demo: bool,
    /// Plugin configuration as JSON: `{"<plugin id>": {"<key>": <value>}}`.
    #[arg(long, env = "TESSERA_PLUGIN_CONFIG")]
    pub plugin_config: Option<String>,
    /// JSON file of secrets per plugin, `{"<plugin id>": {"<name>": "<value>"}}`; a plugin receives
    /// only the secrets its manifest declares, over the protocol.
    #[arg(long, env = "TESSERA_PLUGIN_SECRETS")]
    pub plugin_secrets: Option<PathBuf>,
    /// Turn off fsync in the embedded PostgreSQL (throwaway installations and tests only).
    #[arg(long, hide = true)]
    pub unsafe_fast_database: bool,
}

/// The roles `run` can start.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Role {
    /// Supervises plugins, writes raw observations.
    PluginHost,
    /// Maps raw observations into device events.
    Mapper,
    /// Materializes device events into PostgreSQL.
    Projector,
    /// Serves GraphQL, REST, streams and the dashboard.
    Api,
}

/// Arguments of `run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The role to run.
    pub role: Role,
    /// Log URL: `embedded:<dir>` or `kafka://host:port[,host:port][?option=value]`.
    #[arg(long, env = "TESSERA_LOG_URL")]
    pub log_url: String,
    /// PostgreSQL URL (projector, api).
    #[arg(long, env = "TESSERA_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Plugin packages (plugin-host, mapper).
    #[arg(long = "plugins", env = "TESSERA_PLUGINS", value_delimiter = ',')]
    pub plugins: Vec<PathBuf>,
    /// Plugin state directory (plugin-host).
    #[arg(long, default_value = "./tessera-data/plugin-state", env = "TESSERA_STATE_DIR")]
    pub state_dir: PathBuf,
    /// HTTP listener (api; other roles serve /healthz and /metrics there).
    #[arg(long, default_value = "127.0.0.1:8080", env = "TESSERA_LISTEN")]
    pub listen: SocketAddr,
    /// Topic prefix.
    #[arg(long, default_value = "tessera.", env = "TESSERA_TOPIC_PREFIX")]
    pub topic_prefix: String,
    /// Partitions of the data topics (`raw.*`, `device-events`) when this role creates them: how
    /// many mapper and projector instances can share the work. Topics that exist keep theirs.
    #[arg(long, default_value_t = 1, env = "TESSERA_PARTITIONS", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub partitions: u32,
    /// Mapper and projector: this instance's fixed share of the partitions, `INDEX/COUNT` (e.g.
    /// `0/2` and `1/2` for two mappers). Default: one instance works on every partition.
    #[arg(long, env = "TESSERA_INSTANCE", value_parser = parse_instance)]
    pub instance: Option<(u32, u32)>,
    /// Plugin-host only: JSON file of secrets per plugin, `{"<plugin id>": {"<name>": "<value>"}}`.
    #[arg(long, env = "TESSERA_PLUGIN_SECRETS")]
    pub plugin_secrets: Option<PathBuf>,
    /// Plugin-host only: plugin configuration as JSON, `{"<plugin id>": {"<key>": <value>}}`.
    #[arg(long, env = "TESSERA_PLUGIN_CONFIG")]
    pub plugin_config: Option<String>,
    /// Mapper and projector: `kafka` divides the partitions among the running instances of the
    /// role through a Kafka consumer group (`<prefix>mapper.members`, `<prefix>projector.members`)
    /// and moves a stopped or crashed instance's partitions to the others (needs a `kafka://` log
    /// URL; overrides `--instance`).
    #[arg(long, env = "TESSERA_GROUP_MEMBERSHIP", value_enum)]
    pub group_membership: Option<GroupMembership>,
}

/// How instances of a role divide partitions among themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GroupMembership {
    /// A Kafka consumer group, with failover.
    Kafka,
}

/// Parses `INDEX/COUNT` with `INDEX < COUNT`.
fn parse_instance(text: &str) -> Result<(u32, u32), String> {
    let (index, count) = text.split_once('/').ok_or("expected INDEX/COUNT, e.g. 0/2")?;
    let index: u32 = index.trim().parse().map_err(|_| format!("`{index}` is not a number"))?;
    let count: u32 = count.trim().parse().map_err(|_| format!("`{count}` is not a number"))?;
    if count == 0 || index >= count {
        return Err(format!("instance {index}/{count}: INDEX must be below COUNT"));
    }
    Ok((index, count))
}

/// `plugin` subcommands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Validate a package's contract statically; exits non-zero when it is rejected.
    Check {
        /// Package directory.
        dir: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: OutputFormat,
        /// The previous version of the package: its contract must still be readable by this one.
        #[arg(long)]
        previous: Option<PathBuf>,
    },
    /// Run the plugin in its sandbox against a throwaway log: discovery, observation, mapping and a
    /// dry run of every supported action; prints the devices and UI it would publish and every
    /// violation seen, and exits non-zero when there was one.
    Test {
        /// Package directory.
        dir: PathBuf,
        /// How long to collect observations after the plugin started, in seconds.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Plugin configuration as a JSON object, merged over the manifest defaults.
        #[arg(long)]
        config: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: OutputFormat,
    },
    /// Scaffold a new plugin package (Python, using the single-file SDK) that passes `check` and
    /// `test` as generated.
    New {
        /// Plugin id: lowercase letters, digits, `-` and `_`, starting with a letter.
        name: String,
        /// Directory to create; default: `./<name>`.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// Output format of reports.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    /// For people.
    Text,
    /// For programs.
    Json,
}

/// Arguments of `replay`.
#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// Topic (with or without the prefix).
    #[arg(long)]
    pub topic: String,
    /// First offset.
    #[arg(long, default_value_t = 0)]
    pub from: u64,
    /// Data directory of the embedded log.
    #[arg(long, default_value = "./tessera-data", env = "TESSERA_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Topic prefix.
    #[arg(long, default_value = "tessera.", env = "TESSERA_TOPIC_PREFIX")]
    pub topic_prefix: String,
}

/// `projector` subcommands.
#[derive(Debug, Subcommand)]
pub enum ProjectorCommand {
    /// Rebuild the projection from offset 0 into fresh tables and swap them in.
    Rebuild(DataArgs),
}

/// `token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print its secret (shown once).
    Create {
        /// Token name (shown in the audit trail).
        #[arg(long)]
        name: String,
        /// Scope: read, control or admin.
        #[arg(long, default_value = "read")]
        scope: String,
        /// Data and database.
        #[command(flatten)]
        data: DataArgs,
    },
    /// Revoke a token by id or name.
    Revoke {
        /// Token id or name.
        id: String,
        /// Data and database.
        #[command(flatten)]
        data: DataArgs,
    },
}
