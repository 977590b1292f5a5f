//! `tmux-relay user add NAME`: creates a user with an argon2id password.
//! The password is read twice from the terminal without echo, or once from
//! standard input with `--password-stdin` (one line; the newline is
//! dropped). The password is never logged or printed.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use store::Store;

use super::{codes, now_ms, password, users};

/// `tmux-relay user …`.
#[derive(Args, Debug)]
pub struct UserArgs {
    #[command(subcommand)]
    pub command: UserCommand,
}

/// Subcommands of `tmux-relay user`.
#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user who logs in with a password.
    Add(AddArgs),
}

/// `tmux-relay user add`.
#[derive(Args, Debug)]
pub struct AddArgs {
    /// The user name: 1 to 64 of A-Z a-z 0-9 _ . -
    pub name: String,
    /// Read the password from standard input (one line) instead of the terminal.
    #[arg(long)]
    pub password_stdin: bool,
    /// Database URL (default: SQLite tmux-relay.db in the data dir).
    #[arg(long, env = "TMUX_RELAY_DATABASE_URL")]
    pub database_url: Option<String>,
    /// The relay's data directory (default: the OS data dir + /tmux-bridge).
    #[arg(long, env = "TMUX_RELAY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Runs `tmux-relay user …`.
pub async fn run(args: UserArgs) -> anyhow::Result<()> {
    match args.command {
        UserCommand::Add(a) => add(a).await,
    }
}

async fn add(args: AddArgs) -> anyhow::Result<()> {
    if !users::valid_user_name(&args.name) {
        bail!(
            "invalid user name {:?}: use 1 to 64 of A-Z a-z 0-9 _ . - (not starting with - or .)",
            args.name
        );
    }
    let password = if args.password_stdin {
        read_stdin_password()?
    } else {
        prompt_password()?
    };
    if password.is_empty() {
        bail!("empty password");
    }
    let url = match args.database_url {
        Some(u) => u,
        None => {
            let dir = args
                .data_dir
                .unwrap_or_else(crate::config::default_data_dir);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            crate::config::default_database_url(&dir)
        }
    };
    let store = Store::connect(&url).await.context("opening the database")?;
    let hash = tokio::task::spawn_blocking(move || password::hash_password(&password))
        .await
        .context("hashing task")?
        .context("hashing the password")?;
    let created = store
        .create_user(&codes::new_id(), &args.name, Some(&hash), now_ms())
        .await
        .context("creating the user")?;
    store.close().await;
    match created {
        Some(u) => {
            println!("created user {}", u.name);
            Ok(())
        }
        None => bail!("a user named {:?} exists already", args.name),
    }
}

fn read_stdin_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    Ok(line
        .strip_suffix('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .unwrap_or(&line)
        .to_owned())
}

fn prompt_password() -> anyhow::Result<String> {
    let first = rpassword::prompt_password("Password: ")
        .context("reading the password (use --password-stdin without a terminal)")?;
    let second = rpassword::prompt_password("Again: ").context("reading the password")?;
    if !codes::ct_eq(first.as_bytes(), second.as_bytes()) {
        bail!("the passwords differ");
    }
    Ok(first)
}
