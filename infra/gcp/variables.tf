variable "project_id" {
  description = "Google Cloud project to deploy into."
  type        = string
}

variable "region" {
  description = "Region of the functions, the Eventarc trigger and the KMS key ring."
  type        = string
  default     = "europe-west1"
}

variable "name" {
  description = "Prefix of every resource name (topics: <name>, <name>-dead-letter, <name>-replies)."
  type        = string
  default     = "cloudmom"
}

variable "source_bucket" {
  description = "Bucket holding the functions' source archive (built and uploaded as docs/gcp.md shows)."
  type        = string
}

variable "source_object" {
  description = "Object name of the source archive in source_bucket, e.g. cloudmom-example-<sha>.zip."
  type        = string
}

variable "max_delivery_attempts" {
  description = "Deliveries before a push subscription dead-letters a message (Pub/Sub allows 5-100)."
  type        = number
  default     = 5
  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "Pub/Sub allows 5 to 100 delivery attempts."
  }
}

variable "requester_members" {
  description = "Principals (e.g. serviceAccount:api@p.iam.gserviceaccount.com) that call request(): they publish to the app topic and create, read and delete their own reply subscriptions."
  type        = list(string)
  default     = []
}
