//! `gitops`: the config repository's command line. Exit codes: see
//! `gitops::error` (0 done, 1 other failure, 2 usage, 3 unknown name or
//! malformed input, 4 dirty checkout, 5 not verified, 6 missing
//! credentials, 7 push rejected after retries, 8 environment not ready,
//! 9 tag on another commit, 10 invalid manifests, 11 release refused: the
//! verified marker is for another commit, 12 environment failed outright:
//! rollout aborted or another revision deployed).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gitops::commands::{diff, promote, publish, release, set_image, verify, verify_env};

/// Moves a Docket release through the config repository watched by Argo CD.
#[derive(Debug, Parser)]
#[command(name = "gitops", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Point an environment's overlay at new image references (only its `images:` entry).
    SetImage(set_image::Args),
    /// Give one environment exactly the images a verified other one runs.
    Promote(promote::Args),
    /// Make the config repository's tree this repository's kustomize/ and argocd/.
    Publish(publish::Args),
    /// Promote staging to production and tag the config repository vX.Y.Z.
    Release(release::Args),
    /// Print the object-level diff an overlay change makes when rendered.
    Diff(diff::Args),
    /// Render every overlay and validate it (the checks of `cargo xtask manifests`).
    Verify(verify::Args),
    /// Wait until an environment serves the expected commit, then mark it verified.
    VerifyEnv(verify_env::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::SetImage(args) => set_image::run(args),
        Command::Promote(args) => promote::run(args),
        Command::Publish(args) => publish::run(args),
        Command::Release(args) => release::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Verify(args) => verify::run(args),
        Command::VerifyEnv(args) => verify_env::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("gitops: {error:#}");
            ExitCode::from(gitops::exit_code(&error))
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// verify-env's required arguments followed by `more`.
    fn verify_env(more: &[&'static str]) -> Vec<&'static str> {
        let mut args = vec![
            "gitops",
            "verify-env",
            "--env",
            "staging",
            "--url",
            "http://x",
            "--expect-commit",
            "abc",
            "--argocd-server",
            "https://argocd.example.com",
            "--argocd-token",
            "s3cret-t0ken",
        ];
        args.extend_from_slice(more);
        args
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_documented_invocations_parse() {
        let verify_env_cases = [
            verify_env(&[
                "--app",
                "docket-staging",
                "--prometheus",
                "http://prometheus:9090",
            ]),
            verify_env(&[
                "--prometheus",
                "http://prometheus:9090",
                "--namespace",
                "docket-staging",
                "--consecutive",
                "5",
                "--interval-ms",
                "500",
                "--timeout",
                "60",
                "--push",
            ]),
        ];
        for args in verify_env_cases.iter().map(Vec::as_slice).chain([
            &[
                "gitops",
                "set-image",
                "--env",
                "staging",
                "--image",
                "app=r:1",
                "--push",
            ][..],
            &[
                "gitops",
                "promote",
                "--from",
                "staging",
                "--to",
                "production",
            ],
            &["gitops", "promote", "--force", "--reason", "hotfix"],
            &[
                "gitops",
                "publish",
                "--config-repo",
                "/tmp/c.git",
                "--branch",
                "main",
            ],
            &["gitops", "release", "--tag", "v1.2.3", "--push"],
            &[
                "gitops",
                "release",
                "--tag",
                "v1.2.3",
                "--expect-commit",
                "0123abc",
                "--push",
            ],
            &["gitops", "diff", "--env", "staging"],
            &["gitops", "verify"],
        ]) {
            Cli::try_parse_from(args).unwrap();
        }
        assert!(Cli::try_parse_from(["gitops", "promote", "--force"]).is_err());
        assert!(Cli::try_parse_from(["gitops", "set-image", "--env", "staging"]).is_err());
        assert!(
            Cli::try_parse_from(verify_env(&[
                "--prometheus",
                "http://prometheus:9090",
                "--consecutive",
                "0",
            ]))
            .is_err()
        );
    }

    #[test]
    fn the_argo_cd_token_never_shows_in_debug_output() {
        let cli =
            Cli::try_parse_from(verify_env(&["--prometheus", "http://prometheus:9090"])).unwrap();
        assert!(!format!("{cli:?}").contains("s3cret-t0ken"));
    }
}
