//! `tmux-relay user add NAME`: creates a user with an argon2id password;
//! `tmux-relay user passwd NAME`: sets a new password and ends every login
//! of the user (a running relay closes their sockets at its next keepalive
//! tick). The password is read twice from the terminal without echo, or
//! once from standard input with `--password-stdin` (one line; the newline
//! is dropped). The password is never logged or printed.

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
    /// Set a user's password; ends every login of the user (log out
    /// everywhere).
    Passwd(AddArgs),
}

/// `tmux-relay user add` and `tmux-relay user passwd`.
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
        UserCommand::Passwd(a) => passwd(a).await,
    }
}

/// The store of `args`: its database URL, else SQLite in the data dir
/// (created 0700 with the database file 0600 if missing).
async fn open_store(args: &AddArgs) -> anyhow::Result<Store> {
    let url = match &args.database_url {
        Some(u) => u.clone(),
        None => {
            let dir = args
                .data_dir
                .clone()
                .unwrap_or_else(crate::config::default_data_dir);
            crate::config::default_database_url(&dir)
        }
    };
    Store::connect(&url).await.context("opening the database")
}

fn read_password(args: &AddArgs) -> anyhow::Result<String> {
    let password = if args.password_stdin {
        read_stdin_password()?
    } else {
        prompt_password()?
    };
    if password.is_empty() {
        bail!("empty password");
    }
    Ok(password)
}

async fn passwd(args: AddArgs) -> anyhow::Result<()> {
    let store = open_store(&args).await?;
    let Some(user) = store
        .user_by_name(&args.name)
        .await
        .context("reading the user")?
    else {
        store.close().await;
        bail!("no user named {:?}", args.name);
    };
    let password = read_password(&args)?;
    let hash = tokio::task::spawn_blocking(move || password::hash_password(&password))
        .await
        .context("hashing task")?
        .context("hashing the password")?;
    let changed = store
        .change_password(&user.id, &hash)
        .await
        .context("changing the password")?;
    store.close().await;
    if !changed {
        bail!("the user {:?} vanished", args.name);
    }
    println!(
        "password changed for {}; every login of this user has ended",
        user.name
    );
    Ok(())
}

async fn add(args: AddArgs) -> anyhow::Result<()> {
    if !users::valid_user_name(&args.name) {
        bail!(
            "invalid user name {:?}: use 1 to 64 of A-Z a-z 0-9 _ . - (not starting with - or .)",
            args.name
        );
    }
    let password = read_password(&args)?;
    let store = open_store(&args).await?;
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
