data "google_project" "this" {}

locals {
  # The Pub/Sub service agent: forwards dead letters and mints push OIDC tokens.
  pubsub_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

# ---- encryption: every topic under a customer-managed key ----

resource "google_kms_key_ring" "cloudmom" {
  name     = var.name
  location = var.region
}

resource "google_kms_crypto_key" "pubsub" {
  name            = "${var.name}-pubsub"
  key_ring        = google_kms_key_ring.cloudmom.id
  rotation_period = "7776000s" # 90 days
  lifecycle {
    prevent_destroy = true
  }
}

resource "google_kms_crypto_key_iam_member" "pubsub_agent" {
  crypto_key_id = google_kms_crypto_key.pubsub.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = local.pubsub_agent
}

# ---- topics ----

# publish() sends here; every target travels in the attribute `target`.
resource "google_pubsub_topic" "app" {
  name                       = var.name
  kms_key_name               = google_kms_crypto_key.pubsub.id
  message_retention_duration = "86400s"
  depends_on                 = [google_kms_crypto_key_iam_member.pubsub_agent]
}

# Dead letters: from cloudmom (attributes dead_letter_reason, dead_letter_description) and
# from the push subscription's dead-letter policy.
resource "google_pubsub_topic" "dead_letter" {
  name                       = "${var.name}-dead-letter"
  kms_key_name               = google_kms_crypto_key.pubsub.id
  message_retention_duration = "604800s"
  depends_on                 = [google_kms_crypto_key_iam_member.pubsub_agent]
}

# Replies to request(): each requester instance creates its own subscription here, filtered
# on its attribute reply_key, and deletes it on stop() (it expires after a day idle otherwise).
resource "google_pubsub_topic" "replies" {
  name                       = "${var.name}-replies"
  kms_key_name               = google_kms_crypto_key.pubsub.id
  message_retention_duration = "3600s"
  depends_on                 = [google_kms_crypto_key_iam_member.pubsub_agent]
}

# ---- subscriptions ----

# Push subscription routing one target to the push function: a filter on the target
# attribute, a dead-letter policy (which also makes Pub/Sub send deliveryAttempt), backoff.
resource "google_pubsub_subscription" "audit_push" {
  name                       = "${var.name}-audit"
  topic                      = google_pubsub_topic.app.id
  filter                     = "attributes.target = \"audit\""
  ack_deadline_seconds       = 60
  message_retention_duration = "86400s"

  push_config {
    push_endpoint = google_cloudfunctions2_function.push.service_config[0].uri
    oidc_token {
      service_account_email = google_service_account.push_invoker.email
    }
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  expiration_policy {
    ttl = "" # never expires
  }
}

# Where dead letters are read (pull), kept 7 days.
resource "google_pubsub_subscription" "dead_letter_inbox" {
  name                       = "${var.name}-dead-letter-inbox"
  topic                      = google_pubsub_topic.dead_letter.id
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
  retain_acked_messages      = false

  expiration_policy {
    ttl = ""
  }
}

# One reply subscription per requester (var.requesters: instance id → principal), filtered on
# the reply key the broker writes (`PubSubBroker({ instanceId, replySubscription })`), so
# replies on the shared reply topic reach only their requester. Provisioned here instead of
# created by the broker: see iam.tf.
resource "google_pubsub_subscription" "replies" {
  for_each                   = var.requesters
  name                       = "${var.name}-replies-${each.key}"
  topic                      = google_pubsub_topic.replies.id
  filter                     = "attributes.reply_key = \"${each.key}\""
  ack_deadline_seconds       = 10
  message_retention_duration = "600s"
  retain_acked_messages      = false

  expiration_policy {
    ttl = "" # never expires: it outlives restarts of its requester
  }
}

# The Pub/Sub service agent forwards dead letters: publisher on the dead-letter topic,
# subscriber on the subscription it dead-letters from.
resource "google_pubsub_topic_iam_member" "agent_publishes_dead_letters" {
  topic  = google_pubsub_topic.dead_letter.id
  role   = "roles/pubsub.publisher"
  member = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "agent_reads_audit_push" {
  subscription = google_pubsub_subscription.audit_push.id
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}
