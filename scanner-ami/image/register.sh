#!/usr/bin/env bash
# Register build.sh's raw image as the scanner AMI (scanner-ami/image/README.md, "Building the
# AMI"): the disk image itself, byte for byte, becomes the AMI's root snapshot. There is no other
# way to build the scanner AMI.
#
#   register.sh --version 0-1-0 --region eu-west-1 [--image FILE] [--copy-regions r1,r2]
#               [--kms-key-id KEY] [--dry-run]
#
#   --version       the agentless crate version with dots as dashes (0.1.0 -> 0-1-0): the
#                   orchestrator of that version looks for agentless:image-version=<version>
#   --region        the Region to upload to and register in
#   --image FILE    the raw image (default: target/scanner-image/scanner.img, from build.sh)
#   --copy-regions  other Regions to copy the AMI to (comma-separated), each tagged the same way
#   --kms-key-id    KMS key (id, ARN or alias) of the encrypted snapshot in --region (default: the
#                   account's default EBS key there); copies use each Region's default EBS key
#   --dry-run       print the AWS calls instead of making them
#
# Steps, with the AWS CLI v2 and coldsnap (awslabs; `cargo install --locked coldsnap`):
#   1. coldsnap upload --wait IMAGE: an EBS snapshot written through the EBS direct APIs
#      (StartSnapshot, PutSnapshotBlock, CompleteSnapshot): no S3 bucket, no vmimport service role,
#      no helper instance, and only the image's non-zero 512 KiB blocks travel (the image is sparse);
#   2. aws ec2 copy-snapshot --encrypted: the AMI's snapshot encrypted at rest; the plain upload is
#      deleted;
#   3. aws ec2 register-image: UEFI boot (the image boots only by UEFI: its ESP's
#      \EFI\BOOT\BOOTX64.EFI), x86_64, HVM, ENA, root /dev/xvda (gp3, deleted on termination), IMDSv2
#      required for every instance launched from it, no NitroTPM; UEFI needs a Nitro instance type
#      (the orchestrator's default, m5.xlarge, is one);
#   4. tags on the AMI and its snapshot: Name=alibaba-cloud-security-scan-image-<version> and
#      agentless:image-version=<version> (src/cloud/tags.rs, image_tags);
#   5. aws ec2 copy-image --encrypted to each --copy-regions Region, the same tags there.
# Prints the AMI ids (REGION AMI-ID per line) on stdout; progress on stderr.
#
# Needs in the account (a one-off admin task, not part of the scanning policy in policies/):
# ebs:StartSnapshot, ebs:PutSnapshotBlock, ebs:CompleteSnapshot, ec2:DescribeSnapshots,
# ec2:CopySnapshot, ec2:DeleteSnapshot, ec2:RegisterImage, ec2:DescribeImages, ec2:CopyImage,
# ec2:CreateTags, and kms:CreateGrant/Decrypt/GenerateDataKeyWithoutPlaintext/ReEncrypt* on the keys.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

say() { printf '[register.sh] %s\n' "$*" >&2; }
die() {
    printf '[register.sh] ERROR: %s\n' "$*" >&2
    exit 1
}

VERSION=""
REGION=""
IMAGE="$REPO/target/scanner-image/scanner.img"
COPY_REGIONS=""
KMS_KEY_ID=""
DRY_RUN=0
while [ "$#" -gt 0 ]; do
    case "$1" in
        --version | --region | --image | --copy-regions | --kms-key-id)
            [ "$#" -ge 2 ] || die "$1 needs a value"
            case "$1" in
                --version) VERSION="$2" ;;
                --region) REGION="$2" ;;
                --image) IMAGE="$2" ;;
                --copy-regions) COPY_REGIONS="$2" ;;
                --kms-key-id) KMS_KEY_ID="$2" ;;
            esac
            shift 2
            ;;
        --dry-run)
            DRY_RUN=1
            shift
            ;;
        -h | --help)
            sed -n '2,37p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
[[ "$VERSION" =~ ^[0-9]+-[0-9]+-[0-9]+([-+.][0-9A-Za-z.-]+)?$ ]] ||
    die "--version is the crate version with dots as dashes, e.g. 0-1-0 (got '$VERSION')"
[[ "$REGION" =~ ^[a-z]{2}(-[a-z]+)+-[0-9]+$ ]] || die "--region REGION is required (e.g. eu-west-1)"
[ -f "$IMAGE" ] || die "no image at $IMAGE (sudo scanner-ami/image/build.sh)"
# The image must be build.sh's: GPT with an EFI System Partition (the only way it boots).
if command -v sfdisk >/dev/null 2>&1; then
    sfdisk --dump "$IMAGE" 2>/dev/null | grep -qi 'type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B' ||
        die "$IMAGE has no EFI System Partition: not a build.sh image"
fi
if [ "$DRY_RUN" = 0 ]; then
    for t in aws coldsnap; do
        command -v "$t" >/dev/null 2>&1 || die "$t not found (AWS CLI v2; cargo install --locked coldsnap)"
    done
fi

NAME="alibaba-cloud-security-scan-image-$VERSION"
STAMP="$(date -u +%Y%m%d-%H%M%S)"
TAGS=("Key=Name,Value=$NAME" "Key=agentless:image-version,Value=$VERSION")

# aws_ REGION ARGS...: the AWS CLI in REGION, JSON-free text output; printed instead under --dry-run
# (with a placeholder result so the following steps can be printed too).
aws_() {
    local region="$1"
    shift
    if [ "$DRY_RUN" = 1 ]; then
        printf '+ aws --region %q' "$region" >&2
        printf ' %q' "$@" >&2
        printf '\n' >&2
        case "$*" in
            *copy-snapshot* | *describe-images*SnapshotId*) echo "snap-dryrun" ;;
            *register-image* | *copy-image*) echo "ami-dryrun" ;;
        esac
        return 0
    fi
    aws --region "$region" --output text "$@"
}

# wait_image REGION AMI: until the AMI is available (the CLI's waiter gives up after 10 minutes; a
# copy to another Region can take longer).
wait_image() {
    local n
    for n in 1 2 3 4 5 6; do
        if aws_ "$1" ec2 wait image-available --image-ids "$2"; then return 0; fi
        say "$2 in $1 not available yet (wait $n/6)"
    done
    die "$2 in $1 did not become available"
}

# tag_image REGION AMI: the orchestrator's tags on the AMI and on each of its snapshots.
tag_image() {
    local region="$1" ami="$2" snaps
    snaps="$(aws_ "$region" ec2 describe-images --image-ids "$ami" \
        --query 'Images[0].BlockDeviceMappings[].Ebs.SnapshotId')"
    # shellcheck disable=SC2086 # one word per snapshot id
    aws_ "$region" ec2 create-tags --resources "$ami" $snaps --tags "${TAGS[@]}" >/dev/null
}

# ------------------------------------------------------------------ 1. upload
say "uploading $IMAGE ($(du -h --apparent-size "$IMAGE" | cut -f1), $(du -h "$IMAGE" | cut -f1) allocated) to an EBS snapshot in $REGION"
if [ "$DRY_RUN" = 1 ]; then
    printf '+ AWS_REGION=%s coldsnap upload --wait %s\n' "$REGION" "$IMAGE" >&2
    plain="snap-dryrun"
else
    plain="$(AWS_REGION="$REGION" AWS_DEFAULT_REGION="$REGION" coldsnap upload --wait "$IMAGE" |
        grep -o 'snap-[0-9a-f]*' | tail -n 1)" || true
    [ -n "$plain" ] || die "coldsnap upload printed no snapshot id"
fi
say "uploaded: $plain"

# ------------------------------------------------------------------ 2. encrypt
kms=()
[ -z "$KMS_KEY_ID" ] || kms=(--kms-key-id "$KMS_KEY_ID")
snap="$(aws_ "$REGION" ec2 copy-snapshot --source-region "$REGION" --source-snapshot-id "$plain" \
    --encrypted "${kms[@]}" --description "$NAME ($STAMP)" \
    --tag-specifications "ResourceType=snapshot,Tags=[{Key=Name,Value=$NAME},{Key=agentless:image-version,Value=$VERSION}]" \
    --query SnapshotId)"
[ -n "$snap" ] || die "copy-snapshot returned no snapshot id"
aws_ "$REGION" ec2 wait snapshot-completed --snapshot-ids "$snap"
aws_ "$REGION" ec2 delete-snapshot --snapshot-id "$plain"
say "encrypted snapshot: $snap"

# ------------------------------------------------------------------ 3. register
ami="$(aws_ "$REGION" ec2 register-image \
    --name "$NAME-$STAMP" \
    --description "agentless scanner image $VERSION: Debian 12 + scanner-agent, UEFI (UKI), built by scanner-ami/image/build.sh" \
    --architecture x86_64 --virtualization-type hvm --boot-mode uefi --ena-support \
    --imds-support v2.0 \
    --root-device-name /dev/xvda \
    --block-device-mappings "DeviceName=/dev/xvda,Ebs={SnapshotId=$snap,VolumeType=gp3,DeleteOnTermination=true}" \
    --query ImageId)"
[ -n "$ami" ] || die "register-image returned no image id"
wait_image "$REGION" "$ami"
tag_image "$REGION" "$ami"
say "registered: $ami in $REGION"
printf '%s %s\n' "$REGION" "$ami"

# ------------------------------------------------------------------ 5. copies
IFS=, read -r -a regions <<<"$COPY_REGIONS"
for r in "${regions[@]}"; do
    if [ -z "$r" ] || [ "$r" = "$REGION" ]; then continue; fi
    copy="$(aws_ "$r" ec2 copy-image --source-region "$REGION" --source-image-id "$ami" \
        --name "$NAME-$STAMP" --description "agentless scanner image $VERSION (copy of $ami from $REGION)" \
        --encrypted --query ImageId)"
    [ -n "$copy" ] || die "copy-image to $r returned no image id"
    wait_image "$r" "$copy"
    tag_image "$r" "$copy"
    say "copied: $copy in $r"
    printf '%s %s\n' "$r" "$copy"
done
