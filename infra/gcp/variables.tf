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

variable "requesters" {
  description = "Callers of request(), by instance id (PubSubBroker option instanceId: letters, digits, - and _, at most 64) to principal (e.g. serviceAccount:api@p.iam.gserviceaccount.com). Each gets a reply subscription <name>-replies-<id> filtered on its id, subscriber rights on it alone, and publisher rights on the app topic."
  type        = map(string)
  default     = {}
  validation {
    condition     = alltrue([for id in keys(var.requesters) : can(regex("^[A-Za-z0-9_-]{1,64}$", id))])
    error_message = "Instance ids are 1 to 64 letters, digits, - or _."
  }
}
