//! The command line: `run` (the default), `migrate`, `check-config` and `keygen`, parsed with
//! clap, and how the flags of `run` fold into the configuration.
//!
//! Flags override only a handful of config fields; everything else lives in the TOML file
//! documented in `tuning/`. It does not run anything itself: `main` dispatches.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::Config;

/// The version line: the crate version and the commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("CORETALK_COMMIT"),
    ")"
);

/// coretalk: a thread-per-core chat server speaking the Tinode protocol.
#[derive(Debug, Parser)]
#[command(name = "coretalk", version = VERSION, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `run`'s flags, accepted without the word `run`.
    #[command(flatten)]
    pub run: ServerArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Run(ServerArgs),
    /// Apply the PostgreSQL store's schema migrations and exit (the server also applies them
    /// at start, under an advisory lock).
    Migrate(StoreArgs),
    /// Load and validate the configuration, print where data is kept, and exit.
    CheckConfig(ServerArgs),
    /// Print a new API key (and, without --salt, a new salt for `api.key_salt`).
    Keygen(KeygenArgs),
}

/// Flags of `run` and `check-config`.
#[derive(Debug, Default, Args)]
pub struct ServerArgs {
    /// HTTP/WebSocket listen address (default 0.0.0.0:6060; port 0 = any free port).
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,
    /// gRPC (pbx.Node) listen address (default 0.0.0.0:16060; empty = off).
    #[arg(long, value_name = "HOST:PORT")]
    pub grpc_listen: Option<String>,
    /// Embedded store directory, also where the token key is kept (default ./data).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Number of shards, one pinned core each (default: one per core).
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,
    /// Keep data in PostgreSQL instead of the embedded store (store.url).
    #[arg(long, value_name = "postgres://USER@HOST:PORT/DB")]
    pub store: Option<String>,
    /// TOML configuration (see tuning/); flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Run as the cluster node NAME (cluster.node): peers are found through the PostgreSQL
    /// store; without it the server is standalone.
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    /// The node-to-node listen address (cluster.listen).
    #[arg(long, value_name = "HOST:PORT")]
    pub node_listen: Option<String>,
}

/// Flags of `migrate`.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The database (store.url); required unless the config file names one.
    #[arg(long, value_name = "postgres://USER@HOST:PORT/DB")]
    pub store: Option<String>,
    /// TOML configuration (its [store] section is used).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Flags of `keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Sign with this salt (standard base64, as in `api.key_salt`) instead of a new one.
    #[arg(long, value_name = "BASE64")]
    pub salt: Option<String>,
    /// The key's sequence number.
    #[arg(long, default_value_t = 1)]
    pub sequence: u16,
    /// Mark the key as a root key (as the reference's keygen; no server reads the flag).
    #[arg(long)]
    pub root: bool,
}

impl ServerArgs {
    /// The configuration: the file (or the defaults), then the flags over it.
    pub fn config(&self) -> Result<Config, String> {
        let mut cfg = load(self.config.as_ref())?;
        if let Some(l) = &self.listen {
            cfg.listen.addr = l.clone();
        }
        if let Some(g) = &self.grpc_listen {
            cfg.listen.grpc_addr = g.clone();
        }
        if let Some(d) = &self.data {
            cfg.store.data_dir = d.clone();
        }
        if let Some(s) = self.shards {
            cfg.runtime.shards = s;
        }
        if let Some(s) = &self.store {
            cfg.store.url = s.clone();
        }
        if let Some(n) = &self.node {
            cfg.cluster.node = n.clone();
        }
        if let Some(l) = &self.node_listen {
            cfg.cluster.listen = l.clone();
        }
        Ok(cfg)
    }
}

impl StoreArgs {
    /// The configuration with `--store` over the file's `store.url`.
    pub fn config(&self) -> Result<Config, String> {
        let mut cfg = load(self.config.as_ref())?;
        if let Some(s) = &self.store {
            cfg.store.url = s.clone();
        }
        if cfg.store.embedded() {
            return Err(
                "migrate needs a PostgreSQL store: --store postgres://USER@HOST:PORT/DB or store.url"
                    .into(),
            );
        }
        Ok(cfg)
    }
}

fn load(path: Option<&PathBuf>) -> Result<Config, String> {
    match path {
        Some(p) => Config::from_file(p).map_err(|e| e.to_string()),
        None => Ok(Config::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("coretalk").chain(args.iter().copied()))
    }

    #[test]
    fn run_is_the_default_and_its_flags_override_the_config() {
        let cli = parse(&[
            "--listen",
            "127.0.0.1:0",
            "--shards",
            "3",
            "--store",
            "postgres://u@h:1/d",
        ])
        .unwrap();
        assert!(cli.command.is_none());
        let cfg = cli.run.config().unwrap();
        assert_eq!(cfg.listen.addr, "127.0.0.1:0");
        assert_eq!(cfg.runtime.shards, 3);
        assert_eq!(cfg.store.url, "postgres://u@h:1/d");
        assert!(!cfg.store.embedded());
        let cli = parse(&["run", "--grpc-listen="]).unwrap();
        let Some(Command::Run(args)) = cli.command else {
            panic!("not run")
        };
        assert_eq!(args.config().unwrap().listen.grpc_addr, "");
    }

    #[test]
    fn node_flags_set_the_cluster_section_and_need_postgres() {
        let cli = parse(&["--node", "n1", "--node-listen", "127.0.0.1:0"]).unwrap();
        let cfg = cli.run.config().unwrap();
        assert_eq!(cfg.cluster.node, "n1");
        assert_eq!(cfg.cluster.listen, "127.0.0.1:0");
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("needs a PostgreSQL store"), "{e}");
        let cli = parse(&[
            "--node",
            "n1",
            "--node-listen",
            "h:1",
            "--store",
            "postgres://u@h/d",
        ]);
        cli.unwrap().run.config().unwrap().validate().unwrap();
    }

    #[test]
    fn migrate_needs_a_postgres_url() {
        let cli = parse(&["migrate"]).unwrap();
        let Some(Command::Migrate(args)) = cli.command else {
            panic!("not migrate")
        };
        assert!(args.config().unwrap_err().contains("PostgreSQL"));
        let cli = parse(&["migrate", "--store", "postgres://u@h:1/d"]).unwrap();
        let Some(Command::Migrate(args)) = cli.command else {
            panic!("not migrate")
        };
        assert_eq!(args.config().unwrap().store.url, "postgres://u@h:1/d");
    }

    #[test]
    fn unknown_flags_and_bad_numbers_are_usage_errors() {
        assert_eq!(
            parse(&["--nope"]).unwrap_err().exit_code(),
            2,
            "usage errors exit with 2"
        );
        assert!(parse(&["--shards", "many"]).is_err());
        assert!(parse(&["keygen", "--sequence", "70000"]).is_err());
    }

    #[test]
    fn the_version_names_the_commit() {
        assert!(VERSION.starts_with(env!("CARGO_PKG_VERSION")));
        assert!(VERSION.contains("(commit "));
    }
}
