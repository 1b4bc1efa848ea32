output "policy_arn" {
  description = "The custom policy."
  value       = aws_iam_policy.agentless_scan.arn
}

output "user_arn" {
  description = "The IAM user (principal_type \"user\"); create its access key next (Plan 2, step 1.5)."
  value       = one(aws_iam_user.this[*].arn)
}

output "role_arn" {
  description = "The IAM role to assume with the external id (principal_type \"role\")."
  value       = one(aws_iam_role.this[*].arn)
}

output "managed_policy_arns" {
  description = "The AWS managed policies attached for the selected features."
  value       = sort(tolist(local.managed_policy_arns))
}
