# The scanner AMI (scanner-ami/image/README.md, "Building the AMI"): the official Debian 12 AMI,
# configured by install.sh (the same script build.sh runs on its raw image), tagged so that
# `agentless scan --cloud aws` finds it: agentless:image-version=<version> and
# Name=alibaba-cloud-security-scan-image-<version> (src/cloud/tags.rs, image_tags).
#
#   cargo build --release -p scanner-ami
#   packer init scanner-ami/image/scanner.pkr.hcl
#   packer build -var version=0-1-0 -var region=eu-west-1 scanner-ami/image/scanner.pkr.hcl
#
# Not run in this repository's CI (no AWS there); see the README for what was checked.

packer {
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.2.0"
    }
  }
}

variable "version" {
  type        = string
  description = "The image version: the agentless crate version with dots as dashes (0.1.0 -> 0-1-0). The orchestrator of that version looks for agentless:image-version=<version>."
  validation {
    condition     = can(regex("^[0-9]+-[0-9]+-[0-9]+(?:[-+.][0-9A-Za-z.-]+)?$", var.version))
    error_message = "The version is the crate version with dots as dashes, e.g. 0-1-0."
  }
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "agent" {
  type        = string
  description = "The release scanner-agent binary (x86_64 Linux)."
  default     = "target/release/scanner-agent"
}

variable "instance_type" {
  type    = string
  default = "t3.small"
}

variable "subnet_id" {
  type        = string
  description = "Subnet of the build instance (needs a route to the Debian mirror and Packer's SSH). Empty: the default VPC."
  default     = ""
}

variable "copy_regions" {
  type        = list(string)
  description = "Other Regions to copy the AMI to (with the same tags): the orchestrator looks for its image in each Region it scans, owned by the account."
  default     = []
}

variable "kms_key_id" {
  type        = string
  description = "KMS key of the AMI's encrypted snapshot. Empty: the account's default EBS key."
  default     = ""
}

locals {
  name = "alibaba-cloud-security-scan-image-${var.version}"
  tags = {
    "Name"                    = local.name
    "agentless:image-version" = var.version
  }
}

source "amazon-ebs" "scanner" {
  region        = var.region
  instance_type = var.instance_type
  subnet_id     = var.subnet_id == "" ? null : var.subnet_id

  # The official Debian 12 AMI (the Debian cloud team's account).
  source_ami_filter {
    owners      = ["136693071363"]
    most_recent = true
    filters = {
      name                = "debian-12-amd64-*"
      architecture        = "x86_64"
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
  }
  ssh_username = "admin"
  # Packer's temporary security group admits SSH from this machine's address only.
  temporary_security_group_source_public_ip = true

  # The build instance itself: IMDSv2 only.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  # The AMI: EBS-backed, encrypted root snapshot, ENA, IMDSv2 required by default for every
  # instance launched from it (the orchestrator also asks for it in RunInstances).
  ami_name        = "${local.name}-${formatdate("YYYYMMDD-hhmmss", timestamp())}"
  ami_description = "agentless scanner image ${var.version}: Debian 12 + scanner-agent (scans attached volumes read-only, uploads, powers off)"
  encrypt_boot    = true
  kms_key_id      = var.kms_key_id == "" ? null : var.kms_key_id
  ena_support     = true
  imds_support    = "v2.0"
  ami_regions     = var.copy_regions

  tags          = local.tags
  snapshot_tags = local.tags
  run_tags = {
    "Name" = "${local.name}-builder"
  }
}

build {
  sources = ["source.amazon-ebs.scanner"]

  provisioner "shell" {
    inline = ["rm -rf /tmp/agentless-image", "mkdir -p /tmp/agentless-image"]
  }
  # This directory: install.sh, packages.list, the unit, rootfs/, README.md.
  provisioner "file" {
    source      = "${path.root}/"
    destination = "/tmp/agentless-image"
  }
  provisioner "file" {
    source      = var.agent
    destination = "/tmp/agentless-image/scanner-agent"
  }
  # The shared install script: packages (install amazon-ec2-utils, systemd-resolved, ...; purge
  # openssh-server, cloud-init, udisks2, lvm2, mdadm, unattended-upgrades, ...), files, masks,
  # checks. It fails the build if a check fails.
  provisioner "shell" {
    inline = [
      "sudo /tmp/agentless-image/install.sh --apt --root / --agent /tmp/agentless-image/scanner-agent",
    ]
  }
  # Last: remove the build's own access (Packer's key; cloud-init's sudoers entry for `admin`)
  # and the upload. Nothing may use SSH after this step.
  provisioner "shell" {
    inline = [
      "sudo sh -c 'rm -rf /tmp/agentless-image /home/admin/.ssh/authorized_keys /etc/sudoers.d/90-cloud-init-users && passwd -l admin >/dev/null && passwd -l root >/dev/null'",
    ]
    expect_disconnect = true
  }
}
