# The IAM principal for agentless (Security Center Agentless Detection), following "Plan 2: Manual
# configuration" of the onboarding document: the custom policy of ../agentless-scan.json as a
# customer managed policy, plus the AWS managed policies of ../managed-policies.json for the Host
# and CSPM features, attached to a new IAM user or to a new IAM role assumable with an external id.
# No access key is created here (it would land in the Terraform state): create one for the user
# afterwards (Plan 2, step 1.5).

terraform {
  required_version = ">= 1.3"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

locals {
  create_user = var.principal_type == "user"
  create_role = var.principal_type == "role"

  # [{feature, name, arn, note}, ...]; the features selected by var.features.
  managed_policies    = jsondecode(file("${path.module}/../managed-policies.json"))
  managed_policy_arns = toset([for p in local.managed_policies : p.arn if contains(var.features, p.feature)])
}

# ../agentless-scan.json, verbatim.
resource "aws_iam_policy" "agentless_scan" {
  name        = var.policy_name
  description = "Custom policy for Agentless Detection (policies/agentless-scan.json)"
  policy      = file("${path.module}/../agentless-scan.json")
  tags        = var.tags
}

resource "aws_iam_user" "this" {
  count = local.create_user ? 1 : 0
  name  = var.user_name
  tags  = var.tags
}

resource "aws_iam_user_policy_attachment" "agentless_scan" {
  count      = local.create_user ? 1 : 0
  user       = aws_iam_user.this[0].name
  policy_arn = aws_iam_policy.agentless_scan.arn
}

resource "aws_iam_user_policy_attachment" "managed" {
  for_each   = local.create_user ? local.managed_policy_arns : toset([])
  user       = aws_iam_user.this[0].name
  policy_arn = each.value
}

resource "aws_iam_role" "this" {
  count = local.create_role ? 1 : 0
  name  = var.role_name
  tags  = var.tags
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { AWS = var.trusted_principal_arns }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "sts:ExternalId" = var.external_id } }
    }]
  })

  lifecycle {
    precondition {
      condition     = length(var.trusted_principal_arns) > 0 && length(var.external_id) >= 2
      error_message = "principal_type \"role\" needs trusted_principal_arns and an external_id of 2 to 1224 characters."
    }
  }
}

resource "aws_iam_role_policy_attachment" "agentless_scan" {
  count      = local.create_role ? 1 : 0
  role       = aws_iam_role.this[0].name
  policy_arn = aws_iam_policy.agentless_scan.arn
}

resource "aws_iam_role_policy_attachment" "managed" {
  for_each   = local.create_role ? local.managed_policy_arns : toset([])
  role       = aws_iam_role.this[0].name
  policy_arn = each.value
}

# ../agentless-trail-reader.json with its two values filled in: the onboarding document's SQS
# statement, and s3:GetObject on the trail bucket's log files (narrower than ReadOnlyAccess).
locals {
  trail_reader = var.trail_queue_arn != null && var.trail_bucket != null
}

resource "aws_iam_policy" "trail_reader" {
  count       = local.trail_reader ? 1 : 0
  name        = "${var.policy_name}-TrailReader"
  description = "The CloudTrail pipeline's reader for agentless (policies/agentless-trail-reader.json)"
  policy      = replace(replace(file("${path.module}/../agentless-trail-reader.json"), "$${QueueArn}", coalesce(var.trail_queue_arn, "-")), "$${TrailBucket}", coalesce(var.trail_bucket, "-"))
  tags        = var.tags
}

resource "aws_iam_user_policy_attachment" "trail_reader" {
  count      = local.create_user && local.trail_reader ? 1 : 0
  user       = aws_iam_user.this[0].name
  policy_arn = aws_iam_policy.trail_reader[0].arn
}

resource "aws_iam_role_policy_attachment" "trail_reader" {
  count      = local.create_role && local.trail_reader ? 1 : 0
  role       = aws_iam_role.this[0].name
  policy_arn = aws_iam_policy.trail_reader[0].arn
}
