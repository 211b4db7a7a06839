//! `databricks-sim`: runs the simulator until killed. Prints `listening on http://ADDR` on stdout.
//!
//! Options: `--port N` (default 0: a free port below 32768), `--fixture FILE` (default: the shipped one),
//! `--token T` (repeatable; default `dapi-simulator-token`), `--page-size N` (runs in pages of N;
//! default: one page per room, as the service sends them), `--synthetic NAME=COUNT` (repeatable;
//! a room of COUNT generated runs), `--latency-ms N`, `--port-file FILE` (write the port there
//! once listening), `--cache-pages` (keep rendered pages in memory: for benchmarks),
//! `--deployment NAME=FILE` (repeatable; reads under `/ws/NAME` are served from that fixture
//! instead).

use databricks_sim::data::Dataset;
use databricks_sim::{serve, Config, State};

fn main() {
    if let Err(e) = run() {
        eprintln!("databricks-sim: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let mut config = Config::with_fixture();
    let mut port: u16 = 0;
    let mut port_file = None;
    let mut tokens = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => port = value()?.parse().map_err(|_| "--port takes a number")?,
            "--fixture" => {
                let path = value()?;
                let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
                config.data = Dataset::from_fixture_json(&text)?;
            }
            "--token" => tokens.push(value()?),
            "--page-size" => {
                config.default_page_size = value()?.parse().map_err(|_| "--page-size takes a number")?;
                config.paged_runs = true;
            }
            "--latency-ms" => config.latency_ms = value()?.parse().map_err(|_| "--latency-ms takes a number")?,
            "--synthetic" => {
                let spec = value()?;
                let (name, count) = spec.split_once('=').ok_or("--synthetic takes NAME=COUNT")?;
                config.data.add_synthetic(name, count.parse().map_err(|_| "--synthetic COUNT must be a number")?);
            }
            "--deployment" => {
                let spec = value()?;
                let (name, path) = spec.split_once('=').ok_or("--deployment takes NAME=FIXTURE_FILE")?;
                let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
                config.deployments.insert(name.to_string(), Dataset::from_fixture_json(&text)?);
            }
            "--port-file" => port_file = Some(value()?),
            "--cache-pages" => config.cache_pages = true,
            "--help" | "-h" => {
                println!(concat!(
                    "usage: databricks-sim [--port N] [--fixture FILE] [--token T]... [--page-size N] [--synthetic NAME=COUNT]... ",
                    "[--latency-ms N] [--deployment NAME=FILE]... [--port-file FILE] [--cache-pages]"
                ));
                return Ok(());
            }
            other => return Err(format!("unknown option {other} (try --help)")),
        }
    }
    if !tokens.is_empty() {
        config.tokens = tokens;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let listener = databricks_sim::bind_loopback(port).and_then(|l| {
            l.set_nonblocking(true)?;
            tokio::net::TcpListener::from_std(l)
        });
        let listener = listener.map_err(|e| format!("bind: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        if let Some(f) = port_file {
            std::fs::write(&f, addr.port().to_string()).map_err(|e| format!("{f}: {e}"))?;
        }
        println!("listening on http://{addr}");
        serve(listener, State::new(config)).await;
        Ok(())
    })
}
