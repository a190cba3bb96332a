//! `cargo run -p authgate-example-axum [-- --port N]`: serves the example on
//! `127.0.0.1` (an ephemeral port unless `--port` says otherwise) and prints
//! its URL.

use authgate_example_axum::{Options, build_app};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let port = match port_arg(std::env::args().skip(1)) {
        Ok(p) => p,
        Err(message) => {
            eprintln!("{message}\nusage: authgate-example-axum [--port N]");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(error) => {
            eprintln!("cannot listen on 127.0.0.1:{port}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let url = match listener.local_addr() {
        Ok(addr) => format!("http://{addr}/"),
        Err(error) => {
            eprintln!("cannot read the listening address: {error}");
            return ExitCode::FAILURE;
        }
    };
    let public_url = match url.parse() {
        Ok(u) => u,
        Err(error) => {
            eprintln!("bad URL {url}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let (router, example) = match build_app(public_url, Options::default()).await {
        Ok(built) => built,
        Err(error) => {
            eprintln!("cannot start the example: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("authgate axum example is running: open {url}");
    println!(
        "sign in with any user name at the development provider ({}); Ctrl-C stops it",
        example.idp.issuer_str()
    );
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    drop(example);
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("server error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `--port N` or `--port=N`; 0 (any free port) when absent.
fn port_arg(mut args: impl Iterator<Item = String>) -> Result<u16, String> {
    let mut port = 0;
    while let Some(arg) = args.next() {
        let value = match arg.strip_prefix("--port") {
            Some("") => args.next().ok_or("--port needs a value")?,
            Some(rest) if rest.starts_with('=') => rest[1..].to_owned(),
            _ => return Err(format!("unknown argument {arg:?}")),
        };
        port = value
            .parse()
            .map_err(|_| format!("--port: {value:?} is not a port number"))?;
    }
    Ok(port)
}
