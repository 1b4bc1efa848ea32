//! Identifiers of the cloud seam: one newtype per kind of AWS id (and our own [`JobId`]), each
//! with a validating [`FromStr`], [`Display`](fmt::Display), `as_str` and serde as a plain string.
//!
//! Shapes (EC2 API Reference, "Resource IDs" in the EC2 User Guide: a prefix, a hyphen and 8
//! hexadecimal characters for ids created before 2016-2018, 17 since): `i-`, `vol-`, `snap-`,
//! `vpc-`, `subnet-`, `sg-`, `igw-`, `vpce-`, `eni-`, `rtb-`, `ami-`, hex digits lower-case as
//! AWS prints them. KMS key ids are UUIDs (or `mrk-` + 32 hex for multi-Region keys) or a key
//! ARN. Regions look like `us-east-1` / `us-gov-west-1` (`[a-z]{2}(-gov)?-[a-z]+-\d`), accounts
//! are 12 digits.

use std::fmt;
use std::str::FromStr;

/// A string that is not an id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{value}\" is not a valid {kind} ({expected})")]
pub struct IdError {
    /// The kind of id, e.g. "snapshot id".
    pub kind: &'static str,
    /// The refused text (cut to 80 characters).
    pub value: String,
    /// What was expected.
    pub expected: &'static str,
}

impl IdError {
    fn new(kind: &'static str, value: &str, expected: &'static str) -> IdError {
        IdError { kind, value: value.chars().take(80).collect(), expected }
    }
}

/// The common surface of every id newtype.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $expected:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The id as AWS prints it.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                let check: fn(&str) -> bool = $check;
                if check(s) { Ok($name(s.to_owned())) } else { Err(IdError::new($kind, s, $expected)) }
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                s.parse()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// `prefix` + `-` + 8 or 17 lower-case hex digits.
fn ec2_id(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix).and_then(|rest| rest.strip_prefix('-')).is_some_and(|hex| {
        matches!(hex.len(), 8 | 17) && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn is_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A KMS key id: a UUID (8-4-4-4-12 hex) or `mrk-` + 32 hex (multi-Region key).
fn kms_key_id(s: &str) -> bool {
    if let Some(hex) = s.strip_prefix("mrk-") {
        return hex.len() == 32 && is_hex(hex);
    }
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5 && parts.iter().zip([8, 4, 4, 4, 12]).all(|(p, n)| p.len() == n && is_hex(p))
}

/// `arn:<partition>:kms:<region>:<account>:key/<key id>`.
fn kms_key_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = parts[..] else { return false };
    arn == "arn"
        && partition.starts_with("aws")
        && service == "kms"
        && region_shape(region)
        && account_shape(account)
        && resource.strip_prefix("key/").is_some_and(kms_key_id)
}

/// `[a-z]{2}(-gov)?-[a-z]+-\d`.
fn region_shape(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let lower = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase());
    let (country, middle, number) = match parts[..] {
        [c, m, n] => (c, m, n),
        [c, "gov", m, n] => (c, m, n),
        _ => return false,
    };
    country.len() == 2
        && lower(country)
        && lower(middle)
        && number.len() == 1
        && number.bytes().all(|b| b.is_ascii_digit())
}

fn account_shape(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

id_type!(
    /// An EC2 instance id, `i-` + 8 or 17 hex digits.
    InstanceId, "instance id", "i- followed by 8 or 17 lower-case hex digits", |s| ec2_id(s, "i")
);
id_type!(
    /// An EBS volume id, `vol-...`.
    VolumeId, "volume id", "vol- followed by 8 or 17 lower-case hex digits", |s| ec2_id(s, "vol")
);
id_type!(
    /// An EBS snapshot id, `snap-...`.
    SnapshotId, "snapshot id", "snap- followed by 8 or 17 lower-case hex digits", |s| ec2_id(s, "snap")
);
id_type!(
    /// A VPC id, `vpc-...`.
    VpcId, "VPC id", "vpc- followed by 8 or 17 lower-case hex digits", |s| ec2_id(s, "vpc")
);
id_type!(
    /// A subnet id, `subnet-...`.
    SubnetId, "subnet id", "subnet- followed by 8 or 17 lower-case hex digits", |s| ec2_id(s, "subnet")
);
id_type!(
    /// A security group id, `sg-...`.
    SecurityGroupId, "security group id", "sg- followed by 8 or 17 lower-case hex digits", |s| ec2_id(s, "sg")
);
id_type!(
    /// An internet gateway id, `igw-...`.
    InternetGatewayId, "internet gateway id", "igw- followed by 8 or 17 lower-case hex digits", |s| ec2_id(s, "igw")
);
id_type!(
    /// A VPC endpoint id, `vpce-...`.
    VpcEndpointId, "VPC endpoint id", "vpce- followed by 8 or 17 lower-case hex digits", |s| ec2_id(s, "vpce")
);
id_type!(
    /// A network interface id, `eni-...`.
    NetworkInterfaceId, "network interface id", "eni- followed by 8 or 17 lower-case hex digits", |s| ec2_id(
        s, "eni"
    )
);
id_type!(
    /// A route table id, `rtb-...`.
    RouteTableId, "route table id", "rtb- followed by 8 or 17 lower-case hex digits", |s| ec2_id(s, "rtb")
);
id_type!(
    /// An AMI id, `ami-...`.
    ImageId, "image id", "ami- followed by 8 or 17 lower-case hex digits", |s| ec2_id(s, "ami")
);
id_type!(
    /// A KMS key: its key id (a UUID, or `mrk-` + 32 hex for a multi-Region key) or its key ARN
    /// (`arn:aws:kms:<region>:<account>:key/<key id>`, as `DescribeVolumes` reports `KmsKeyId`).
    /// Aliases are not accepted: the authorization of a KMS call is on the key, not the alias.
    KmsKeyId, "KMS key id", "a key id (UUID or mrk-...) or a key ARN arn:aws:kms:<region>:<account>:key/<id>", |s| {
        kms_key_id(s) || kms_key_arn(s)
    }
);
id_type!(
    /// A KMS grant id (1 to 128 letters and digits; AWS returns 64 hex digits).
    GrantId, "grant id", "1 to 128 ASCII letters and digits", |s| {
        (1..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
    }
);
id_type!(
    /// An AWS Region code, e.g. `us-east-1`, `us-gov-west-1`.
    Region, "region", "a Region code like us-east-1: [a-z]{2}(-gov)?-[a-z]+-<digit>", region_shape
);
id_type!(
    /// A 12-digit AWS account id.
    AccountId, "account id", "12 digits", account_shape
);
id_type!(
    /// A scan job id: 1 to 32 characters of `a-z`, `0-9` and `-`, starting and ending with a
    /// letter or digit. It goes into resource names (`SAS_Agentless-<job>-<volume>`,
    /// `alibaba-cloud-security-scan-<job>-<role>`), tag values and the KMS grant name, all of which
    /// it keeps well inside their length limits (EC2 tag values 256, security group names 255,
    /// grant names 256).
    JobId, "job id", "1 to 32 of a-z 0-9 -, starting and ending with a letter or digit", |s| {
        (1..=32).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    }
);

impl KmsKeyId {
    /// The key id part (the text after `key/` of an ARN, or the whole id).
    #[must_use]
    pub fn key_id(&self) -> &str {
        self.0.rsplit_once("key/").map_or(self.0.as_str(), |(_, id)| id)
    }

    /// The key ARN: the id itself if it is one, else built from `partition`, `region`, `account`.
    #[must_use]
    pub fn arn(&self, partition: &str, region: &Region, account: &AccountId) -> String {
        if self.0.starts_with("arn:") {
            self.0.clone()
        } else {
            format!("arn:{partition}:kms:{region}:{account}:key/{}", self.0)
        }
    }

    /// The Region of a key ARN (`None` for a bare key id).
    #[must_use]
    pub fn region(&self) -> Option<&str> {
        if self.0.starts_with("arn:") { self.0.split(':').nth(3) } else { None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec2_ids() {
        for ok in ["i-0123456789abcdef0", "i-1a2b3c4d", "vol-0a1b2c3d4e5f60718"] {
            assert!(ok.parse::<InstanceId>().is_ok() || ok.parse::<VolumeId>().is_ok(), "{ok}");
        }
        assert!("i-0123456789ABCDEF0".parse::<InstanceId>().is_err(), "upper case");
        assert!("i-0123456789abcdef".parse::<InstanceId>().is_err(), "16 digits");
        assert!("i-0123456789abcdefg".parse::<InstanceId>().is_err(), "not hex");
        assert!("vol-0123456789abcdef0".parse::<InstanceId>().is_err(), "wrong prefix");
        assert!("vpce-0123456789abcdef0".parse::<VpcId>().is_err(), "vpce is not vpc");
        let e = "snap-1".parse::<SnapshotId>().expect_err("short");
        assert_eq!(
            e.to_string(),
            "\"snap-1\" is not a valid snapshot id (snap- followed by 8 or 17 lower-case hex digits)"
        );
    }

    #[test]
    fn regions_accounts_keys_jobs() {
        for ok in ["us-east-1", "eu-west-3", "us-gov-west-1", "ap-southeast-2", "cn-north-1"] {
            assert!(ok.parse::<Region>().is_ok(), "{ok}");
        }
        for bad in ["us-east", "US-EAST-1", "us-east-10", "useast-1", "us--1", "u-east-1", ""] {
            assert!(bad.parse::<Region>().is_err(), "{bad}");
        }
        assert!("111122223333".parse::<AccountId>().is_ok());
        assert!("11112222333".parse::<AccountId>().is_err());
        let k: KmsKeyId = "1234abcd-12ab-34cd-56ef-1234567890ab".parse().expect("uuid");
        let acct: AccountId = "111122223333".parse().expect("account");
        let region: Region = "us-east-1".parse().expect("region");
        assert_eq!(
            k.arn("aws", &region, &acct),
            "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        );
        let arn: KmsKeyId =
            "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab".parse().expect("arn");
        assert_eq!(arn.key_id(), "mrk-1234abcd12ab34cd56ef1234567890ab");
        assert_eq!(arn.region(), Some("eu-west-1"));
        assert!("alias/aws/ebs".parse::<KmsKeyId>().is_err());
        assert!("arn:aws:kms:us-east-1:111122223333:alias/x".parse::<KmsKeyId>().is_err());
        assert!("20260315-7k2q".parse::<JobId>().is_ok());
        for bad in ["", "-a", "a-", "A1", "a_b", &"a".repeat(33)] {
            assert!(bad.parse::<JobId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn serde_as_string() {
        let id: VpcId = serde_json::from_str("\"vpc-0a1b2c3d\"").expect("parse");
        assert_eq!(serde_json::to_string(&id).expect("json"), "\"vpc-0a1b2c3d\"");
        assert!(serde_json::from_str::<VpcId>("\"vpc-x\"").is_err());
    }
}
