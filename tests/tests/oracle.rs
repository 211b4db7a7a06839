//! The truth oracle (issue #18): generated queries over the foreign tables must return the rows
//! the same queries return over ordinary tables loaded with the dataset's rows (computed in Rust,
//! not through the wrapper), or fail with the SQLSTATE the rules say. One test per
//! configuration of the matrix: URL kinds, deployments, list_parents, cache_ttl, page sizes,
//! and simulator worlds with vanished, deleted and unusable rooms and 404s.
//!
//! `DATABRICKS_FDW_ORACLE_SEED` (a number, or `random`) and `DATABRICKS_FDW_ORACLE_QUERIES`
//! (per configuration; default 200) make a longer or different run.

use databricks_fdw_e2e::oracle::expect::{DeploymentMode, Fault, Rules};
use databricks_fdw_e2e::oracle::query::{generate, Context};
use databricks_fdw_e2e::oracle::rng::{self, Rng};
use databricks_fdw_e2e::oracle::run::{check, report, Outcome};
use databricks_fdw_e2e::oracle::setup::{Configuration, Realism, Setup, Url};

const QUERIES: usize = 200;

fn run_configuration(c: Configuration) {
    run_queries(c, QUERIES);
}

/// What the generator may use in configuration `c`.
fn context<'a>(c: &Configuration, setup: &'a Setup, rules: &Rules) -> Context<'a> {
    Context {
        truth: &setup.truth,
        want: &setup.want,
        deployment_values: c.deployment_values(),
        // Upstream faults are judged on queries that always make their requests.
        deployment_percent: if c.fault() != Fault::None {
            0
        } else if c.url == Url::Template {
            50
        } else {
            15
        },
        join_clean_rooms: !c.lists_unfollowable_rooms() && rules.deployments != DeploymentMode::DefaultOnly,
    }
}

/// `default` queries (unless DATABRICKS_FDW_ORACLE_QUERIES says otherwise) in configuration `c`.
fn run_queries(c: Configuration, default: usize) {
    let started = std::time::Instant::now();
    let mut setup = Setup::new(&c);
    let rules = Rules { deployments: c.deployment_mode(), list_parents: c.list_parents, fault: c.fault() };
    let seed = rng::seed() ^ c.name.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
    let mut rng = Rng::new(seed);
    let count = rng::queries(default);
    let queries: Vec<_> = {
        let ctx = context(&c, &setup, &rules);
        (0..count).map(|_| generate(&ctx, &mut rng)).collect()
    };
    let (mut failures, mut outcomes) = (Vec::new(), Vec::new());
    for q in &queries {
        match check(&mut setup.world.db, &rules, q) {
            Ok(outcome) => outcomes.push(outcome),
            Err(problem) => failures.push(report(&c, q, &rules, &problem)),
        }
    }
    let compared = outcomes.iter().filter(|o| matches!(o, Outcome::Rows(_))).count();
    let with_rows = outcomes.iter().filter(|o| matches!(o, Outcome::Rows(n) if *n > 0)).count();
    eprintln!(
        "oracle [{}]: {count} queries, {} failed; {compared} compared ({with_rows} with rows), {} failed as expected; {:.1} s",
        c.name,
        failures.len(),
        outcomes.len() - compared,
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} of {count} queries failed in configuration {:?} (seed {}):\n\n{}",
        failures.len(),
        c,
        rng::seed(),
        failures.iter().take(8).cloned().collect::<Vec<_>>().join("\n\n")
    );
    // An oracle whose queries all come back empty compares nothing.
    assert!(compared == 0 || with_rows * 2 >= compared, "only {with_rows} of {compared} compared queries returned rows");
}

#[test]
fn fixed_ip_url_with_deployment_name() {
    run_configuration(Configuration::base("fixed_named"));
}

#[test]
fn fixed_ip_url_without_deployment_name() {
    run_configuration(Configuration { deployment_name: None, ..Configuration::base("fixed_ip") });
}

#[test]
fn fixed_localhost_url_without_deployment_name() {
    run_configuration(Configuration { url: Url::Localhost, deployment_name: None, ..Configuration::base("fixed_localhost") });
}

#[test]
fn template_url_with_allowed_deployments() {
    run_configuration(Configuration {
        url: Url::Template,
        deployment_name: Some("a"),
        allowed: true,
        ..Configuration::base("template_allowed")
    });
}

#[test]
fn template_url_without_allowed_deployments() {
    run_configuration(Configuration { url: Url::Template, deployment_name: Some("a"), ..Configuration::base("template_default") });
}

#[test]
fn list_parents_off() {
    run_configuration(Configuration { list_parents: false, ..Configuration::base("no_parents") });
}

#[test]
fn response_cache_on() {
    run_configuration(Configuration { cache_ttl: true, ..Configuration::base("cached") });
}

#[test]
fn one_item_per_page() {
    // Half as many: each query makes a request per row.
    run_queries(Configuration { page_size: Some(1), ..Configuration::base("page_1") }, QUERIES / 2);
}

#[test]
fn large_pages() {
    run_configuration(Configuration { page_size: Some(1000), ..Configuration::base("page_1000") });
}

#[test]
fn a_room_vanished_since_it_was_listed() {
    run_configuration(Configuration { realism: Realism::VanishedRoom, ..Configuration::base("vanished") });
}

#[test]
fn a_deleted_room() {
    run_configuration(Configuration { realism: Realism::DeletedRoom, ..Configuration::base("deleted") });
}

#[test]
fn rooms_without_a_usable_name() {
    run_configuration(Configuration { realism: Realism::UnusableNames, ..Configuration::base("unusable_names") });
}

#[test]
fn a_404_on_a_later_page() {
    run_configuration(Configuration { realism: Realism::LaterPage404, ..Configuration::base("later_page_404") });
}

#[test]
fn an_endpoint_the_workspace_lacks() {
    run_configuration(Configuration { realism: Realism::NoTaskRunsEndpoint, ..Configuration::base("no_task_runs") });
}
