//! One job end to end against moto over HTTP (`tests/moto`), with real `scanner-agent` processes
//! producing the bundles: a "customer" fleet of three instances with six volumes, each volume
//! standing for one of the demo disk images; the runner with the AWS backend behind the guard with
//! the custom policy alone; and a test hypervisor that watches moto for our scanner instances and
//! "boots" each one as EC2 would: it follows the scanner's real block device mappings (device →
//! scanner volume → its snapshot → the snapshot's source volume → that volume's image), serves the
//! instance's user data over an IMDSv2 on loopback, runs `scanner-agent run` on a device directory
//! of symlinks, and, when the agent is done, powers the instance off (terminated, as its shutdown
//! behaviour says). The agent uploads its signed bundle to the collector over loopback HTTPS: the
//! collector serves its self-signed certificate and every manifest pins its SHA-256 (issue 15). The
//! fleet and the hypervisor live in `tests/moto/hypervisor.rs` (the daemon's test against moto,
//! `tests/serve/moto.rs`, uses them too).
//!
//! The job must end `Done` with every volume's stored package count equal to what
//! `scanner_ami::scan::scan_image` reads from its image, no call refused by the guard, the
//! customer's instances untouched, and nothing with our Name prefixes left in moto.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use agentless::cloud::AccountId;
use agentless::collector::Collector;
use agentless::collector::server::Server;
use agentless::job::runner::{LogProgress, wall_clock};
use agentless::job::{JobSettings, Runner, ScannerImage, Selector};
use agentless::ledger::JobState;
use scanner_ami::bundle::DeviceStatus;

use crate::moto::hypervisor::WEB_PACKAGES;
use crate::moto::{ACCOUNT, CALLER_USER};
use crate::util::{MotoFleet, assert_moto_left_clean, moto_fleet, open_ledger, shared};

/// The whole job; moto answers at once and the agent scans these small images in well under a
/// second each, so minutes mean something hangs.
const JOB_TIMEOUT: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto from the venv (scripts/setup-test-env.sh) and the scanner-agent binary (cargo build --workspace)"]
async fn a_job_against_moto_scans_with_real_agents_and_leaves_nothing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("AGENTLESS_LOG"))
        .with_test_writer()
        .try_init();
    // The customer's side (its Amazon image is the scanner AMI too) and EC2's: the test hypervisor.
    // Every bundle must carry the scanner's identity document, signed by the hypervisor's test CA
    // (loaded as a `<region>.pem` directory, the way AWS's certificates are) for this Region.
    let fx = moto_fleet().await;
    let hypervisor = fx.hypervisor();
    let certs = fx.identity_certs(&hypervisor);
    let MotoFleet { moto, region, ec2, dir, base: ami, fleet, customer_instances } = fx;

    // The orchestrator: collector on loopback, AWS backend behind the guard with the bundled
    // policy alone, a short poll (moto is instant).
    let data = dir.path().join("data");
    let collector = Collector::new(&data, scanner_ami::bundle::BundleLimits::default());
    let identity = agentless::collector::tls::TlsIdentity::self_signed(&data, &["127.0.0.1".into()]).expect("tls");
    let server = Server::start_with(collector.clone(), ([127, 0, 0, 1], 0).into(), Some(&identity))
        .await
        .expect("collector listens");
    assert!(server.url().starts_with("https://"), "{}", server.url());
    collector.set_identity_trust(Some(agentless::collector::IdentityTrust::from_dir(&certs).expect("trust")));
    let guard = Arc::new(moto.guard_with(&region, &[]).await);
    let ledger = shared(open_ledger(&data));
    let mut settings = JobSettings::new(ScannerImage::Id(ami.clone()));
    settings.poll = Duration::from_millis(100);
    settings.scan_timeout = Duration::from_secs(120);
    settings.collector_cert_sha256 = server.cert_sha256().map(str::to_owned);
    // Kept alive: a dropped sender would end every cancellable sleep at once.
    let (_cancel_tx, cancel) = tokio::sync::watch::channel(false);
    let account: AccountId = ACCOUNT.parse().expect("account");
    let runner = Runner::new(
        guard,
        ledger,
        collector.clone(),
        settings,
        account,
        format!("arn:aws:iam::{ACCOUNT}:user/{CALLER_USER}"),
        Arc::new(LogProgress),
        wall_clock(),
        cancel,
    );
    let job = runner.create(&region, Selector::All, &server.url()).expect("create");
    let started = Instant::now();
    let Ok(driven) = tokio::time::timeout(JOB_TIMEOUT, runner.drive(&job)).await else {
        let l = hypervisor.log.lock().unwrap_or_else(PoisonError::into_inner);
        panic!("the job did not end in {JOB_TIMEOUT:?}; scanners booted: {:#?}; failures: {:#?}", l.boots, l.failures);
    };
    let outcome = driven.expect("drive");
    let took = started.elapsed();
    let log = {
        let l = hypervisor.log.lock().unwrap_or_else(PoisonError::into_inner);
        (l.boots.clone(), l.failures.clone())
    };
    drop(hypervisor);
    let (boots, failures) = log;
    eprintln!("job {job} against moto: {:?} in {took:?}; {} scanner(s) booted", outcome.state, boots.len());

    assert_eq!(
        outcome.state,
        JobState::Done,
        "failure {:?}, leaked {:?}\n{:#?}",
        outcome.doc.failure,
        outcome.doc.leaked,
        outcome.doc
    );
    assert!(outcome.doc.leaked.is_empty(), "{:?}", outcome.doc.leaked);
    assert!(failures.is_empty(), "hypervisor: {failures:#?}");
    // Every bundle passed the identity check (a refused one would have failed its scanner).
    assert!(collector.refusals().is_empty(), "{:?}", collector.refusals());

    // The targets are exactly the customer's instances (not the scanner), every volume scanned.
    let targets: BTreeSet<String> = outcome.doc.targets().keys().map(ToString::to_string).collect();
    assert_eq!(targets, customer_instances);
    for (i, v) in outcome.doc.volumes() {
        assert!(v.scanned, "{i} {}: {v:?}", v.volume);
    }

    // Each scanner was launched as designed and booted once; its devices are the fleet's volumes.
    assert_eq!(boots.len(), outcome.doc.scanners().len(), "{boots:#?}");
    let mut booted_volumes = BTreeSet::new();
    for b in &boots {
        assert!(b.imds_v2_required, "{}: IMDSv2 not required", b.instance);
        assert_eq!(b.shutdown_behavior, "terminate", "{}", b.instance);
        assert!(matches!(b.exit, Some(0 | 1)), "{}: agent exit {:?}", b.instance, b.exit);
        assert_eq!(b.manifest.job, job.as_str());
        assert_eq!(b.manifest.collector_url, server.url());
        assert_eq!(b.manifest.collector_cert_sha256.as_deref(), Some(identity.fingerprint()), "{}", b.instance);
        let scanner = outcome.doc.scanners().iter().find(|s| s.name == b.manifest.scanner).expect("scanner in the doc");
        assert_eq!(scanner.instance.as_ref().map(ToString::to_string).as_deref(), Some(b.instance.as_str()));
        booted_volumes.extend(b.devices.iter().map(|(_, v)| v.clone()));
    }
    assert_eq!(booted_volumes, fleet.iter().map(|v| v.volume.clone()).collect::<BTreeSet<_>>());

    // Every volume's stored result has the packages the agent's code reads from its image.
    for v in &fleet {
        let stored = collector.store().volume(job.as_str(), &v.instance, &v.volume).unwrap_or_else(|| {
            panic!("{} {} ({}): no stored result", v.name, v.device, v.volume);
        });
        assert!(
            matches!(stored.entry.status, DeviceStatus::Complete | DeviceStatus::Partial),
            "{} {}: {:?}",
            v.name,
            v.device,
            stored.entry
        );
        assert_eq!(stored.entry.packages, v.expected_packages(), "{} {} ({})", v.name, v.device, v.image.display());
        assert!(stored.dir.join("inventory.json").is_file(), "{}", stored.dir.display());
    }
    let web = fleet.iter().find(|v| v.name == "moto-web-1").expect("web");
    let stored = collector.store().volume(job.as_str(), &web.instance, &web.volume).expect("web result");
    assert_eq!(stored.entry.packages, WEB_PACKAGES, "demo-disk.img holds {WEB_PACKAGES} installed packages");

    // Every call the job made was allowed by the custom policy alone.
    let trace = runner.guard().trace();
    let refused: Vec<_> = trace.iter().filter(|t| !t.allowed).collect();
    assert!(refused.is_empty(), "refused: {refused:#?}");
    let policies = runner.guard().policy().policies();
    assert_eq!(policies.len(), 1);
    assert_eq!(policies[0].name(), "agentless-scan.json");
    let ops: BTreeMap<&str, usize> = trace.iter().fold(BTreeMap::new(), |mut m, t| {
        *m.entry(t.op).or_default() += 1;
        m
    });
    eprintln!("{} calls through the guard: {ops:?}", trace.len());
    for op in ["CreateSnapshots", "CreateVpc", "RunInstances", "TerminateInstances", "DeleteVpc", "DeleteSnapshot"] {
        assert!(ops.contains_key(op), "{op} not in the trace: {ops:?}");
    }

    // Nothing of ours is left; the customer's instances and volumes are untouched.
    assert_moto_left_clean(&ec2, &fleet).await;
    drop(server);
}
