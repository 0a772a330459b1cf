# The example app (examples/gcp/index.ts) as two Cloud Functions (2nd gen) from one archive.
locals {
  function_env = {
    GOOGLE_CLOUD_PROJECT       = var.project_id
    CLOUDMOM_TOPIC             = google_pubsub_topic.app.name
    CLOUDMOM_DEAD_LETTER_TOPIC = google_pubsub_topic.dead_letter.name
    CLOUDMOM_REPLY_TOPIC       = google_pubsub_topic.replies.name
    CLOUDMOM_LOG_LEVEL         = "info"
  }
}

# CloudEvent function (targets hello, sum, flaky) behind an Eventarc Pub/Sub trigger on the app
# topic. Retries MUST be enabled, or a failing handler's message is dropped instead of
# redelivered. Eventarc triggers cannot filter on attributes: messages for targets this
# function does not handle (audit) are discarded (acknowledged, logged once per target).
resource "google_cloudfunctions2_function" "rpc" {
  name     = "${var.name}-rpc"
  location = var.region

  build_config {
    runtime     = "nodejs22"
    entry_point = "cloudmom"
    source {
      storage_source {
        bucket = var.source_bucket
        object = var.source_object
      }
    }
  }

  service_config {
    service_account_email          = google_service_account.functions.email
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    available_memory               = "256M"
    timeout_seconds                = 60
    max_instance_count             = 10
    environment_variables          = local.function_env
  }

  event_trigger {
    trigger_region        = var.region
    event_type            = "google.cloud.pubsub.topic.v1.messagePublished"
    pubsub_topic          = google_pubsub_topic.app.id
    retry_policy          = "RETRY_POLICY_RETRY"
    service_account_email = google_service_account.trigger.email
  }
}

# HTTP function for the push subscription (target audit).
resource "google_cloudfunctions2_function" "push" {
  name     = "${var.name}-push"
  location = var.region

  build_config {
    runtime     = "nodejs22"
    entry_point = "cloudmomPush"
    source {
      storage_source {
        bucket = var.source_bucket
        object = var.source_object
      }
    }
  }

  service_config {
    service_account_email          = google_service_account.functions.email
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    available_memory               = "256M"
    timeout_seconds                = 60
    max_instance_count             = 10
    environment_variables          = local.function_env
  }
}
