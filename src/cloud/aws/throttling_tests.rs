//! Throttling: a local HTTP server (std `TcpListener` on 127.0.0.1) stands in for EC2 and answers
//! the first N requests with HTTP 503 + the EC2 `RequestLimitExceeded` XML error, then with a
//! valid `DescribeRegions` response. The SDK's standard retry mode must retry the burst up to the
//! configured attempts, and the backend must then report [`ErrorKind::Throttled`] with the request
//! id, without any retry of its own (the server counts exactly `max_attempts` requests).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::{AwsCloud, AwsConfig, StaticCredentials};
use crate::cloud::authz::Scope;
use crate::cloud::{AccountId, ErrorKind, Guard, GuardPolicy, GuardRules, Region};
use crate::policy::agentless_scan_policy;

/// The EC2 throttling error body (EC2 API Reference, "Error codes": `RequestLimitExceeded`;
/// the `<Response><Errors>...<RequestID>` shape of every EC2 error).
const THROTTLED: &str = "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit \
                         exceeded.</Message></Error></Errors><RequestID>abc</RequestID></Response>";

const REGIONS: &str = r#"<DescribeRegionsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>ok-1</requestId><regionInfo><item><regionName>us-east-1</regionName><regionEndpoint>ec2.us-east-1.amazonaws.com</regionEndpoint><optInStatus>opt-in-not-required</optInStatus></item></regionInfo></DescribeRegionsResponse>"#;

/// Read one HTTP/1.1 request (headers, then `Content-Length` bytes of body).
fn read_request(stream: &TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)
}

/// Serve forever: the first `burst` requests get 503 + `RequestLimitExceeded`, later ones 200.
fn serve(burst: usize) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            if read_request(&stream).is_err() {
                continue;
            }
            let n = seen.fetch_add(1, Ordering::SeqCst);
            let (status, body) = if n < burst { ("503 Service Unavailable", THROTTLED) } else { ("200 OK", REGIONS) };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/xml;charset=UTF-8\r\nContent-Length: {}\r\nConnection: \
                 close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    (url, count)
}

async fn guard(url: String, max_attempts: u32) -> Guard<AwsCloud> {
    let config = AwsConfig {
        regions: vec![region()],
        endpoint_url: Some(url),
        credentials: Some(StaticCredentials {
            access_key_id: "testing".into(),
            secret_access_key: "testing".into(),
            session_token: None,
        }),
        max_attempts,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        attempt_timeout: Duration::from_secs(10),
        operation_timeout: Duration::from_secs(30),
        ..AwsConfig::default()
    };
    let account: AccountId = "123456789012".parse().expect("account");
    let policy = GuardPolicy::new(
        vec![agentless_scan_policy().expect("bundled policy")],
        Scope::new(account),
        GuardRules::default(),
    );
    Guard::new(AwsCloud::new(&config).await.expect("config"), policy)
}

fn region() -> Region {
    "us-east-1".parse().expect("region")
}

#[tokio::test]
async fn a_burst_longer_than_the_attempts_ends_throttled() {
    let (url, count) = serve(100);
    let guard = guard(url, 3).await;
    let err = guard.describe_regions(&region(), &crate::cloud::ops::Empty).await.expect_err("throttled");
    assert_eq!(count.load(Ordering::SeqCst), 3, "the SDK's attempts, no more: {err}");
    assert_eq!(err.kind(), ErrorKind::Throttled, "{err}");
    assert_eq!(err.code(), Some("RequestLimitExceeded"));
    assert_eq!(err.request_id(), Some("abc"));
    assert_eq!(err.region(), Some(&region()));
    assert_eq!(err.operation(), "DescribeRegions");
}

#[tokio::test]
async fn a_burst_shorter_than_the_attempts_is_absorbed() {
    let (url, count) = serve(2);
    let guard = guard(url, 3).await;
    let regions = guard.describe_regions(&region(), &crate::cloud::ops::Empty).await.expect("third attempt succeeds");
    assert_eq!(count.load(Ordering::SeqCst), 3);
    assert_eq!(regions.len(), 1);
    assert_eq!(regions[0].region, region());
}

#[tokio::test]
async fn one_attempt_means_no_retry() {
    let (url, count) = serve(1);
    let guard = guard(url, 1).await;
    let err = guard.describe_regions(&region(), &crate::cloud::ops::Empty).await.expect_err("throttled");
    assert_eq!((count.load(Ordering::SeqCst), err.kind()), (1, ErrorKind::Throttled));
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    // Bind and drop: nothing listens on the port any more.
    let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let guard = guard(format!("http://127.0.0.1:{port}"), 2).await;
    let err = guard.describe_regions(&region(), &crate::cloud::ops::Empty).await.expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    assert_eq!(err.code(), None);
}
