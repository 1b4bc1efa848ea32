variable "principal_type" {
  description = "\"user\" (the onboarding document's plan: an IAM user with an access key) or \"role\" (assumed with an external id)."
  type        = string
  default     = "user"
  validation {
    condition     = contains(["user", "role"], var.principal_type)
    error_message = "principal_type must be \"user\" or \"role\"."
  }
}

variable "user_name" {
  description = "Name of the IAM user (principal_type \"user\")."
  type        = string
  default     = "aliyun-security-center-user"
}

variable "role_name" {
  description = "Name of the IAM role (principal_type \"role\")."
  type        = string
  default     = "aliyun-security-center-agentless"
}

variable "trusted_principal_arns" {
  description = "Principals allowed to assume the role (principal_type \"role\"), e.g. [\"arn:aws:iam::123456789012:root\"]."
  type        = list(string)
  default     = []
}

variable "external_id" {
  description = "The external id the role requires in sts:AssumeRole (principal_type \"role\")."
  type        = string
  default     = ""
  sensitive   = true
}

variable "features" {
  description = "Features whose AWS managed policies are attached (../managed-policies.json): \"Host\", \"CSPM\". Agentless Detection always gets the custom policy."
  type        = list(string)
  default     = ["Host", "CSPM"]
  validation {
    condition     = alltrue([for f in var.features : contains(["Host", "CSPM"], f)])
    error_message = "features may contain only \"Host\" and \"CSPM\"."
  }
}

variable "policy_name" {
  description = "Name of the customer managed policy (the onboarding document's example name)."
  type        = string
  default     = "AliyunSASC-AgentlessScan-Policy"
}

variable "tags" {
  description = "Tags for the policy, user and role."
  type        = map(string)
  default     = {}
}

variable "trail_queue_arn" {
  description = "The CloudTrail pipeline's SQS queue ARN (docs/trail.md); with trail_bucket, attaches ../agentless-trail-reader.json."
  type        = string
  default     = null
}

variable "trail_bucket" {
  description = "The CloudTrail pipeline's S3 bucket (its log files under AWSLogs/ are read)."
  type        = string
  default     = null
}
