//! `agentless serve` with `cloud = "aws"` against moto (`tests/moto`, HTTP to moto): the daemon's AWS
//! path end to end, as a process. The customer fleet of `tests/moto/hypervisor.rs` (three
//! instances, six volumes standing for the demo disk images) and a scanner image tagged as
//! `scanner-ami/image` tags it are made in moto first; the daemon opens the account through its
//! `endpoint_url` with credentials from the environment (the standard chain), checks the account
//! id, finds the scanner image by its `agentless:image-version` tag (no AMI is configured: moto
//! answers `DescribeImages(Owners=self, tag filter)` as AWS does) and hands the scanners its own
//! listener as the collector URL, over HTTPS (issue 15): the daemon serves the self-signed
//! certificate of its data directory (made before it starts, so it must reuse it: the same pin
//! across processes), every manifest pins its SHA-256, and the API is called over HTTPS trusting
//! that certificate alone. The test hypervisor boots the scanners with the real `scanner-agent`,
//! which uploads to the daemon through the pinned TLS.
//!
//! An on-demand scan of the Region (`POST /v1/scans`: deterministic, unlike a schedule) must end
//! `Done` with every volume's package count what the agent's code reads from its image, served by
//! `/v1/instances/{id}/latest`; `/metrics` must count the AWS calls, every one `ok`, and no
//! throttle. A second scan names the web server and an instance moto does not have: the daemon
//! resolves such a list itself, and must scan the web server (it created no job at all before the
//! fix in `Daemon::resolve`, see `tests/serve/select.rs`). Then nothing of ours may be left in
//! moto, and SIGTERM must exit 0.
//!
//! The account also has its CloudTrail pipeline (issue 19): a bucket, a queue and the bucket's
//! notification to it are made in moto (moto does not run CloudTrail delivery: the test puts the
//! log object itself). After the two scans, the test sends the queue a message that is no
//! notification (logged and skipped, the reader goes on) and puts a gzip log file whose
//! `RunInstances` record, by a customer admin, names the web server: the daemon must read it once,
//! record it processed, and scan the web server in a run of the `events` schedule.
//!
//! A second test checks what the daemon refuses at start on AWS (another account's credentials,
//! a Region the account lacks), with credentials from the environment and through an assumed role.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use agentless::cloud::ImageId;
use agentless::cloud::tags::{Role, image_tags};
use agentless::ledger::trail::ObjectKey;
use agentless::ledger::{JobState, Ledger};
use aws_sdk_ec2::types as ec2t;

use super::{SERVE_TOKEN as TOKEN, free_port, http, jobs, kill, log_of, serve_command, try_http, wait_for};
use crate::moto::hypervisor::WEB_PACKAGES;
use crate::moto::{ACCOUNT, Moto};
use crate::util::{MotoFleet, assert_moto_left_clean, moto_fleet, moto_instance};

/// The on-demand job, from the request to `Done`: moto answers at once and the agent scans these
/// small images in well under a second each, so minutes mean something hangs.
const JOB_TIMEOUT: Duration = Duration::from_secs(300);

/// An instance id moto's account does not have (the shape of a terminated instance EC2 no longer
/// lists).
const GONE: &str = "i-0123456789abcdef0";

/// The scanner image of this build in moto, made the way `scanner-ami/image/scanner.pkr.hcl`
/// makes it in an account: an image of a builder instance, tagged with [`image_tags`] (its Name
/// and `agentless:image-version`); the builder is then terminated, so it is no scan target.
async fn scanner_image(ec2: &aws_sdk_ec2::Client, base: &ImageId) -> ImageId {
    let version = agentless::cloud::tags::image_version();
    let role = Role::new(&version).expect("the version is a valid tag value");
    let tags = image_tags(role).iter().map(|t| ec2t::Tag::builder().key(&t.key).value(&t.value).build()).collect();
    let builder = moto_instance(ec2, base, "scanner-image-builder").await.to_string();
    let image = ec2
        .create_image()
        .instance_id(&builder)
        .name(agentless::cloud::tags::image_name(&version))
        .no_reboot(true)
        .tag_specifications(
            ec2t::TagSpecification::builder().resource_type(ec2t::ResourceType::Image).set_tags(Some(tags)).build(),
        )
        .send()
        .await
        .expect("CreateImage");
    ec2.terminate_instances().instance_ids(&builder).send().await.expect("terminate the builder");
    image.image_id().expect("image id").parse().expect("an image id")
}

/// A daemon process, killed (SIGKILL) if still running when dropped: a failed assertion must not
/// leave it running.
struct Running(Child);

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// `agentless serve` (as [`super::start`]) with static test credentials in the environment (the
/// standard chain's first provider), and no shared config, profile or instance metadata of this
/// machine.
fn start_on_aws(config: &Path, data: &Path, log: &Path) -> Running {
    let empty = log.with_extension("empty-aws-config");
    std::fs::write(&empty, "").expect("empty AWS config");
    serve_command(config, data, log)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_ENDPOINT_URL")
        .env("AWS_CONFIG_FILE", &empty)
        .env("AWS_SHARED_CREDENTIALS_FILE", &empty)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .spawn()
        .map(Running)
        .expect("start agentless serve")
}

/// `agentless_aws_calls_total` by (action, outcome).
fn aws_calls(metrics: &str) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("agentless_aws_calls_total{action=\"") else { continue };
        let (action, rest) = rest.split_once("\",outcome=\"").expect("an outcome label");
        let (outcome, n) = rest.split_once("\"} ").expect("a value");
        out.insert((action.to_owned(), outcome.to_owned()), n.parse().expect("a count"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto from the venv (scripts/setup-test-env.sh) and the scanner-agent binary (cargo build --workspace)"]
async fn the_daemon_on_aws_scans_moto_on_demand_with_real_agents_and_leaves_nothing() {
    // The customer's side; EC2's side: scanners booted with the real agent, uploading to the URL
    // of their manifest. The daemon trusts the hypervisor's test CA for this Region, as it would
    // AWS's certificate.
    let fx = moto_fleet().await;
    let hypervisor = fx.hypervisor();
    let certs = fx.identity_certs(&hypervisor);
    let MotoFleet { moto, region, ec2, dir, base, fleet, customer_instances } = fx;
    // Our scanner image in the account.
    let scanner_ami = scanner_image(&ec2, &base).await;
    let pipeline = Pipeline::create(&moto, &region).await;

    // The daemon: one account at moto's endpoint, with its id; no AMI configured (found by tag);
    // its own listener as the collector URL; a short poll (moto is instant; AWS's default is 5 s).
    let data = dir.path().join("data");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let collector_url = format!("https://{addr}");
    let identity = agentless::collector::tls::TlsIdentity::self_signed(&data, &["127.0.0.1".into()]).expect("tls");
    super::use_tls(addr, identity.fingerprint());
    let config = dir.path().join("agentless.toml");
    std::fs::write(
        &config,
        format!(
            r#"
cloud = "aws"

[server]
listen = "{addr}"
collector_url = "{collector_url}"
token = "{TOKEN}"
identity_certs = "{certs}"

[[accounts]]
name = "moto"
id = "{ACCOUNT}"
endpoint_url = "{endpoint}"
regions = ["{region}"]

[accounts.trail]
region = "{region}"
queue = "{queue}"
bucket = "{bucket}"

[trail]
wait_seconds = 1

[events]
delay = "1s"

[scanner]
poll = "100ms"

[daemon]
shutdown_deadline = "60s"
"#,
            endpoint = moto.url,
            certs = certs.display(),
            queue = pipeline.queue_name,
            bucket = pipeline.bucket,
        ),
    )
    .expect("config");
    let log = dir.path().join("serve.log");
    let mut daemon = start_on_aws(&config, &data, &log);

    wait_for("the API", Duration::from_secs(60), &log, async || {
        if let Ok(Some(status)) = daemon.try_wait() {
            panic!("agentless serve exited with {status} at start:\n{}", log_of(&log));
        }
        try_http(addr, "GET", "/healthz", None, None).await.ok()
    })
    .await;
    assert_eq!(http(addr, "POST", "/v1/scans", None, Some("{}")).await.status, 401);
    assert!(
        log_of(&log).contains(&format!("TLS certificate SHA-256 {}", identity.fingerprint())),
        "the daemon serves the stored certificate:\n{}",
        log_of(&log)
    );

    // An on-demand scan of the Region: one job.
    let started = Instant::now();
    let (job, done) = scan(addr, &format!(r#"{{"regions": ["{region}"]}}"#), &log).await;
    let took = started.elapsed();
    assert_eq!(done["state"], "Done", "{done}\ndaemon log:\n{}", log_of(&log));
    assert_eq!(done["schedule"], "on-demand", "{done}");
    assert_eq!(done["account"], ACCOUNT, "{done}");

    // The job as the API shows it: the customer's instances, all scanned; nothing held.
    assert_eq!(scanned_targets(addr, &job).await, customer_instances);

    // Every volume's result, served by the API: the packages the agent's code reads from its image;
    // the web server's OS volume with an SBOM with components.
    for instance in &customer_instances {
        let r = http(addr, "GET", &format!("/v1/instances/{instance}/latest"), Some(TOKEN), None).await;
        assert_eq!(r.status, 200, "{r:?}");
        let latest = r.json();
        assert_eq!(latest["job"], job.as_str(), "{instance}");
        let served = latest["volumes"].as_array().expect("volumes");
        let mine: Vec<_> = fleet.iter().filter(|v| &v.instance == instance).collect();
        assert_eq!(served.len(), mine.len(), "{instance}: {latest}");
        for v in mine {
            let s = served.iter().find(|s| s["volume"] == v.volume.as_str()).unwrap_or_else(|| {
                panic!("{} {} ({}): not served", v.name, v.device, v.volume);
            });
            let status = &s["device"]["status"];
            assert!(status == "complete" || status == "partial", "{} {}: {status}", v.name, v.device);
            assert_eq!(
                s["device"]["packages"].as_u64(),
                Some(v.expected_packages() as u64),
                "{} {} ({})",
                v.name,
                v.device,
                v.image.display()
            );
            assert!(s["inventory"].is_object(), "{} {}: no inventory", v.name, v.device);
            if v.name == "moto-web-1" {
                assert_eq!(s["device"]["packages"].as_u64(), Some(WEB_PACKAGES as u64));
                let components = s["sbom"]["components"].as_array().map_or(0, Vec::len);
                assert!(components >= WEB_PACKAGES, "{components} components in the web server's SBOM");
            }
        }
    }

    // The AWS calls: counted by action, every one ok, no throttle.
    let m = http(addr, "GET", "/metrics", Some(TOKEN), None).await;
    assert_eq!(m.status, 200);
    let calls = aws_calls(&m.body);
    let not_ok: Vec<_> = calls.iter().filter(|((_, outcome), _)| outcome != "ok").collect();
    assert!(not_ok.is_empty(), "calls that failed: {not_ok:?}\n{}", m.body);
    for op in ["DescribeImages", "CreateSnapshots", "RunInstances", "TerminateInstances", "DeleteVpc", "DeleteSnapshot"]
    {
        assert!(calls.contains_key(&(op.to_owned(), "ok".to_owned())), "{op} not counted:\n{}", m.body);
    }
    assert!(m.body.contains("agentless_aws_throttles_total 0\n"), "{}", m.body);
    assert!(m.body.contains("agentless_jobs{state=\"Done\"} 1\n"), "{}", m.body);
    assert!(m.body.contains("agentless_runs_total{schedule=\"on-demand\",kind=\"on-demand\"} 1\n"), "{}", m.body);
    let total: u64 = calls.values().sum();

    // A second scan naming the web server and an instance the Region does not have (terminated
    // and gone): the daemon resolves the list with a filtered DescribeInstances; the unknown id
    // must not cost the web server its scan.
    let web = fleet.iter().find(|v| v.name == "moto-web-1").expect("web").instance.clone();
    let body = format!(r#"{{"regions": ["{region}"], "targets": {{"instances": ["{web}", "{GONE}"]}}}}"#);
    let (named_job, done) = scan(addr, &body, &log).await;
    assert_eq!(done["state"], "Done", "{done}\ndaemon log:\n{}", log_of(&log));
    assert_eq!(scanned_targets(addr, &named_job).await, BTreeSet::from([web.clone()]));
    let r = http(addr, "GET", &format!("/v1/instances/{web}/latest"), Some(TOKEN), None).await;
    assert_eq!(r.json()["job"], named_job.as_str(), "{r:?}");

    // The pipeline: a message that is no notification is skipped; the log object naming the web
    // server is read once and scans it, in a run of the `events` schedule.
    pipeline.send_garbage().await;
    let (key, etag) = pipeline.put_log(&web).await;
    let events_job = wait_for("the event-driven job to end", JOB_TIMEOUT, &log, async || {
        let j = jobs(addr).await?.into_iter().find(|j| j["schedule"] == "events")?;
        j["state"].as_str().is_some_and(|s| s.parse::<JobState>().is_ok_and(|s| s.is_terminal())).then_some(j)
    })
    .await;
    assert_eq!(events_job["state"], "Done", "{events_job}\ndaemon log:\n{}", log_of(&log));
    let events_job = events_job["id"].as_str().expect("id").to_owned();
    assert_eq!(scanned_targets(addr, &events_job).await, BTreeSet::from([web.clone()]));
    let m = http(addr, "GET", "/metrics", Some(TOKEN), None).await;
    assert!(m.body.contains("agentless_trail_objects_total{outcome=\"read\"} 1\n"), "{}", m.body);
    assert!(m.body.contains("agentless_trail_messages_total{outcome=\"refused\"} 1\n"), "{}", m.body);
    assert!(m.body.contains("agentless_trail_events_total{kind=\"launched\"} 1\n"), "{}", m.body);
    assert!(m.body.contains("agentless_event_scans_total{outcome=\"started\"} 1\n"), "{}", m.body);
    assert!(log_of(&log).contains("queue message skipped"), "{}", log_of(&log));

    // Each scanner ran our image, found by its tag, uploaded to the daemon's listener and powered
    // off; the first job's scanners had every customer volume, the second's the web server's.
    let (boots, failures) = hypervisor.stop();
    assert!(failures.is_empty(), "hypervisor: {failures:#?}");
    let mut booted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for b in &boots {
        assert!(b.imds_v2_required, "{}: IMDSv2 not required", b.instance);
        assert_eq!(b.shutdown_behavior, "terminate", "{}", b.instance);
        assert!(matches!(b.exit, Some(0 | 1)), "{}: agent exit {:?}", b.instance, b.exit);
        assert_eq!(b.manifest.collector_url, collector_url);
        assert_eq!(b.manifest.collector_cert_sha256.as_deref(), Some(identity.fingerprint()), "{}", b.instance);
        booted.entry(b.manifest.job.clone()).or_default().extend(b.devices.iter().map(|(_, v)| v.clone()));
    }
    let volumes_of = |pick: &dyn Fn(&str) -> bool| {
        fleet.iter().filter(|v| pick(&v.instance)).map(|v| v.volume.clone()).collect::<BTreeSet<_>>()
    };
    let want = BTreeMap::from([
        (job.clone(), volumes_of(&|_| true)),
        (named_job.clone(), volumes_of(&|i| i == web)),
        (events_job.clone(), volumes_of(&|i| i == web)),
    ]);
    assert_eq!(booted, want);
    let scanners: Vec<String> = boots.iter().map(|b| b.instance.clone()).collect();
    let out = ec2.describe_instances().set_instance_ids(Some(scanners)).send().await.expect("scanners");
    for i in out.reservations().iter().flat_map(|r| r.instances()) {
        assert_eq!(i.image_id(), Some(scanner_ami.as_str()), "{:?} was not launched from our image", i.instance_id());
    }

    // Nothing of ours left in moto; the customer's instances and volumes untouched.
    assert_moto_left_clean(&ec2, &fleet).await;

    // SIGTERM: nothing in flight, so it stops at once, cleanly.
    kill(&mut daemon, "-TERM");
    let stopping = Instant::now();
    let status = daemon.wait().expect("wait");
    let stop_took = stopping.elapsed();
    assert_eq!(status.code(), Some(0), "{}", log_of(&log));
    assert!(log_of(&log).contains("every job is finished"), "{}", log_of(&log));

    // The ledger agrees: the three jobs Done, nothing live, no intent unresolved; the log object
    // read once.
    let l = Ledger::open(&data).expect("ledger");
    let all = l.jobs().expect("jobs");
    assert_eq!(all.len(), 3, "{all:?}");
    let object = ObjectKey { bucket: pipeline.bucket.clone(), key, etag };
    assert_eq!(l.trail_object_outcome(&object).expect("trail object").as_deref(), Some("read"));
    assert_eq!(l.trail_object_counts().expect("trail objects").0, 1, "one object processed");
    for j in &all {
        assert_eq!(j.state, JobState::Done, "{}: {:?}", j.id, j.error);
        assert!(l.live_resources(&j.id).expect("live").is_empty(), "{}", j.id);
        assert!(l.unresolved_intents(&j.id).expect("intents").is_empty(), "{}", j.id);
    }
    let scanners_of_first = boots.iter().filter(|b| b.manifest.job == job).count();
    eprintln!(
        "serve against moto: the whole-Region job {job} Done in {:.1} s ({scanners_of_first} scanner(s), {} volumes): \
         {total} AWS calls ({:.1} per volume), 0 throttles; SIGTERM exit in {:.2} s\n  calls: {}",
        took.as_secs_f64(),
        fleet.len(),
        total as f64 / fleet.len() as f64,
        stop_took.as_secs_f64(),
        calls.iter().map(|((action, _), n)| format!("{action} {n}")).collect::<Vec<_>>().join(", ")
    );
}

/// The CloudTrail pipeline of the account in moto: the trail bucket, the queue, and the bucket's
/// notification of new objects to the queue (the onboarding's steps 1 to 3; moto delivers the
/// notification, not the trail, so the test writes the log files).
struct Pipeline {
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    bucket: String,
    queue_name: String,
    queue_url: String,
    region: String,
}

impl Pipeline {
    async fn create(moto: &Moto, region: &agentless::cloud::Region) -> Pipeline {
        let sdk = moto.sdk(region).await;
        let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let bucket = format!("aws-cloudtrail-logs-{ACCOUNT}-agentless");
        let queue_name = "aliyun-sasc-log-queue".to_owned();
        let mut create = s3.create_bucket().bucket(&bucket);
        if region.as_str() != "us-east-1" {
            create = create.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region.as_str()))
                    .build(),
            );
        }
        create.send().await.expect("create the trail bucket");
        let queue_url = sqs.create_queue().queue_name(&queue_name).send().await.expect("create the queue");
        let queue_url = queue_url.queue_url().expect("queue url").to_owned();
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue arn");
        let arn = attrs
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .expect("QueueArn")
            .clone();
        let notification = aws_sdk_s3::types::NotificationConfiguration::builder()
            .queue_configurations(
                aws_sdk_s3::types::QueueConfiguration::builder()
                    .queue_arn(arn)
                    .events(aws_sdk_s3::types::Event::from("s3:ObjectCreated:*"))
                    .build()
                    .expect("queue configuration"),
            )
            .build();
        s3.put_bucket_notification_configuration()
            .bucket(&bucket)
            .notification_configuration(notification)
            .send()
            .await
            .expect("the bucket's notification");
        Pipeline { s3, sqs, bucket, queue_name, queue_url, region: region.to_string() }
    }

    /// A message that is no S3 notification.
    async fn send_garbage(&self) {
        self.sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body("{\"not\": \"a notification\"")
            .send()
            .await
            .expect("send");
    }

    /// A CloudTrail log file with one `RunInstances` by a customer admin that launched `instance`;
    /// its key and ETag.
    async fn put_log(&self, instance: &str) -> (String, String) {
        let now = jiff::Timestamp::now();
        let stamp = now.strftime("%Y%m%dT%H%MZ").to_string();
        let day = now.strftime("%Y/%m/%d").to_string();
        let region = &self.region;
        let record = serde_json::json!({
            "eventVersion": "1.08",
            "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLEADMIN", "arn": format!("arn:aws:iam::{ACCOUNT}:user/ops-admin"),
                "accountId": ACCOUNT, "accessKeyId": "AKIAEXAMPLEADMIN01", "userName": "ops-admin"},
            "eventTime": now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "eventSource": "ec2.amazonaws.com",
            "eventName": "RunInstances",
            "awsRegion": region,
            "sourceIPAddress": "203.0.113.20",
            "userAgent": "console.ec2.amazonaws.com",
            "requestParameters": {"instancesSet": {"items": [{"imageId": "ami-0abcdef1234567890", "minCount": 1, "maxCount": 1}]}},
            "responseElements": {"instancesSet": {"items": [{"instanceId": instance}]}},
            "requestID": "8d6b8f0e-0000-4000-8000-000000000001",
            "eventID": "1f6b8f0e-0000-4000-8000-000000000001",
            "readOnly": false,
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": ACCOUNT
        });
        let body = serde_json::json!({"Records": [record]}).to_string();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, body.as_bytes()).expect("gzip");
        let bytes = gz.finish().expect("gzip");
        let key = format!(
            "AWSLogs/{ACCOUNT}/CloudTrail/{region}/{day}/{ACCOUNT}_CloudTrail_{region}_{stamp}_0a1b2c3d4e5f6a7b.json.gz"
        );
        let put = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .body(aws_sdk_s3::primitives::ByteStream::from(bytes))
            .send()
            .await
            .expect("put the log file");
        (key, put.e_tag().unwrap_or_default().trim_matches('"').to_owned())
    }
}

/// `POST /v1/scans` with `body`, which must make one job; wait until it ends; its id and its
/// entry of `GET /v1/jobs`.
async fn scan(addr: std::net::SocketAddr, body: &str, log: &Path) -> (String, serde_json::Value) {
    let r = http(addr, "POST", "/v1/scans", Some(TOKEN), Some(body)).await;
    assert_eq!(r.status, 202, "{r:?}\n{}", log_of(log));
    let accepted = r.json();
    let ids = accepted["jobs"].as_array().expect("jobs");
    assert_eq!(ids.len(), 1, "{body}: {accepted}\n{}", log_of(log));
    let job = ids[0].as_str().expect("job id").to_owned();
    let done = wait_for("the job to end", JOB_TIMEOUT, log, async || {
        let j = jobs(addr).await?.into_iter().find(|j| j["id"] == job.as_str())?;
        j["state"].as_str().is_some_and(|s| s.parse::<JobState>().is_ok_and(|s| s.is_terminal())).then_some(j)
    })
    .await;
    (job, done)
}

/// The targets of `job` as `GET /v1/jobs/{id}` shows them, each of them scanned; the job holds
/// nothing and left nothing.
async fn scanned_targets(addr: std::net::SocketAddr, job: &str) -> BTreeSet<String> {
    let shown = http(addr, "GET", &format!("/v1/jobs/{job}"), Some(TOKEN), None).await;
    assert_eq!(shown.status, 200, "{shown:?}");
    let shown = shown.json();
    assert_eq!(shown["resources"]["live"], 0, "{shown}");
    assert!(shown["failure"].is_null(), "{shown}");
    assert_eq!(shown["not_removed"], serde_json::json!([]), "{shown}");
    shown["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .map(|t| {
            assert_eq!(t["status"], "scanned", "{t}");
            t["instance"].as_str().expect("instance").to_owned()
        })
        .collect()
}

/// The role moto lets anyone assume into another account (moto keeps one set of resources per
/// account and answers assumed-role credentials as that account).
const OTHER_ACCOUNT: &str = "111111111111";

/// The account checks at start, with credentials from the environment and through an assumed
/// role (`role_arn` and `external_id`, into another account): credentials of another account than
/// the configured `id`, and a Region the account does not have (a misspelt one here), are setup
/// errors (exit 2) naming what is wrong, before anything is scanned; the role into the account it
/// says opens, serves, and stops on SIGTERM with 0. The Region check came with this test: before
/// it, the daemon started and each run's job in that Region would fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto from the venv (scripts/setup-test-env.sh)"]
async fn the_account_checks_at_start_with_credentials_and_an_assumed_role() {
    let moto = Moto::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let role = format!(
        "role_arn = \"arn:aws:iam::{OTHER_ACCOUNT}:role/agentless-scanner\"\nexternal_id = \"agentless-test\"\n"
    );
    let cases = [
        // (the account's id, role lines, Regions, what the log says; None: it starts)
        ("111122223333", "", r#"["us-east-1"]"#, Some(format!("belong to account {ACCOUNT}, not 111122223333"))),
        (
            ACCOUNT,
            "",
            r#"["us-east-1", "us-east-9"]"#,
            Some(format!("Regions not enabled for account {ACCOUNT}: us-east-9")),
        ),
        (ACCOUNT, &role, r#"["us-east-1"]"#, Some(format!("belong to account {OTHER_ACCOUNT}, not {ACCOUNT}"))),
        (OTHER_ACCOUNT, &role, r#"["us-east-1", "eu-west-1"]"#, None),
    ];
    // `cloud = "aws"` needs identity certificates to start (no scanner uploads here).
    let certs = dir.path().join("identity-certs");
    std::fs::create_dir_all(&certs).expect("certs dir");
    let ca = agentless::collector::identity::TestCa::generate().expect("test CA");
    std::fs::write(certs.join("us-east-1.pem"), ca.certificate_pem()).expect("cert");
    for (n, (id, role, regions, refused)) in cases.into_iter().enumerate() {
        let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let config = dir.path().join(format!("agentless-{n}.toml"));
        std::fs::write(
            &config,
            format!(
                r#"
cloud = "aws"
[server]
listen = "{addr}"
collector_url = "https://{addr}"
token = "{TOKEN}"
identity_certs = "{certs}"
[[accounts]]
name = "moto"
id = "{id}"
endpoint_url = "{endpoint}"
{role}regions = {regions}
"#,
                endpoint = moto.url,
                certs = certs.display(),
            ),
        )
        .expect("config");
        let log = dir.path().join(format!("serve-{n}.log"));
        let data = dir.path().join(format!("data-{n}"));
        let identity = agentless::collector::tls::TlsIdentity::self_signed(&data, &["127.0.0.1".into()]).expect("tls");
        super::use_tls(addr, identity.fingerprint());
        let mut daemon = start_on_aws(&config, &data, &log);
        let started = Instant::now();
        let Some(want) = refused else {
            wait_for("the API", Duration::from_secs(30), &log, async || {
                if let Ok(Some(status)) = daemon.try_wait() {
                    panic!("agentless serve exited with {status} at start:\n{}", log_of(&log));
                }
                try_http(addr, "GET", "/healthz", None, None).await.ok()
            })
            .await;
            assert_eq!(http(addr, "GET", "/metrics", Some(TOKEN), None).await.status, 200);
            kill(&mut daemon, "-TERM");
            let status = daemon.wait().expect("wait");
            assert_eq!(status.code(), Some(0), "{}", log_of(&log));
            continue;
        };
        let status = loop {
            if let Some(status) = daemon.try_wait().expect("wait") {
                break status;
            }
            if started.elapsed() > Duration::from_secs(30) {
                kill(&mut daemon, "-KILL");
                let _ = daemon.wait();
                panic!("agentless serve is still running (case {n}, account {id}, {regions}):\n{}", log_of(&log));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(status.code(), Some(2), "{}", log_of(&log));
        assert!(log_of(&log).contains(&want), "{want:?} not in:\n{}", log_of(&log));
    }
}
