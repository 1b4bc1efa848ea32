//! A real Debian bookworm root made by `debootstrap --variant=minbase` (cached by
//! scripts/setup-test-env.sh), written into a GPT + ext4 image and scanned: the package set must
//! equal `dpkg-query`'s exactly.

use crate::util::{dpkg_oracle, gpt_efi_ext4, ours, scan_image};

#[test]
#[ignore = "needs the debootstrap tree of scripts/setup-test-env.sh (AGENTLESS_DEBOOTSTRAP_ROOT)"]
fn debian_bookworm_image_matches_dpkg_query_exactly() {
    let root = std::env::var("AGENTLESS_DEBOOTSTRAP_ROOT")
        .expect("AGENTLESS_DEBOOTSTRAP_ROOT must name the debootstrap tree (scripts/setup-test-env.sh)");
    let root = std::path::Path::new(&root);
    let work = tempfile::tempdir().expect("tmp");
    let img = gpt_efi_ext4(work.path(), root, 512);
    let r = scan_image(&img);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.os.as_ref().map(|o| o.distro()), Some("debian-12".into()));
    let oracle = dpkg_oracle(root);
    assert!(oracle.len() > 80, "debootstrap tree looks incomplete: {} packages", oracle.len());
    assert_eq!(ours(&r.packages), oracle);
    let allocated = std::fs::metadata(&img).map(|m| std::os::unix::fs::MetadataExt::blocks(&m) * 512).expect("meta");
    let read = r.stats.bytes_read.expect("bytes");
    assert!(read * 100 <= allocated, "read {read} bytes, more than 1% of {allocated} allocated");
}
