# Least privilege: one identity per role, rights granted on single topics and services, no
# project-wide Pub/Sub role.

# Runtime identity of both functions: publishes replies (reply topic), dead letters and
# add()'s reply targets (app topic). It reads nothing: messages are pushed to it.
resource "google_service_account" "functions" {
  account_id   = "${var.name}-functions"
  display_name = "cloudmom functions runtime"
}

resource "google_pubsub_topic_iam_member" "functions_publish" {
  for_each = {
    app         = google_pubsub_topic.app.id
    dead_letter = google_pubsub_topic.dead_letter.id
    replies     = google_pubsub_topic.replies.id
  }
  topic  = each.value
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${google_service_account.functions.email}"
}

# Identity of the Eventarc trigger: receives events and invokes the rpc function only.
resource "google_service_account" "trigger" {
  account_id   = "${var.name}-trigger"
  display_name = "cloudmom Eventarc trigger"
}

resource "google_project_iam_member" "trigger_receives_events" {
  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = "serviceAccount:${google_service_account.trigger.email}"
}

resource "google_cloud_run_v2_service_iam_member" "trigger_invokes_rpc" {
  name     = google_cloudfunctions2_function.rpc.service_config[0].service
  location = var.region
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.trigger.email}"
}

# Identity in the push subscription's OIDC token: invokes the push function only.
resource "google_service_account" "push_invoker" {
  account_id   = "${var.name}-push"
  display_name = "cloudmom push subscription invoker"
}

resource "google_cloud_run_v2_service_iam_member" "push_invokes_push" {
  name     = google_cloudfunctions2_function.push.service_config[0].service
  location = var.region
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.push_invoker.email}"
}

# The Pub/Sub service agent mints the OIDC tokens for that identity (and only that one).
resource "google_service_account_iam_member" "agent_mints_push_tokens" {
  service_account_id = google_service_account.push_invoker.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

# Requesters (callers of request()), least privilege: each one publishes to the app topic and
# reads its own reply subscription (pubsub.tf, google_pubsub_subscription.replies), provisioned
# here, so it needs no right to create, consume or delete any other subscription: Pub/Sub has
# no IAM condition on resource names and no parent narrower than the project for
# subscriptions, so a requester creating its own would need those rights project-wide. The
# broker uses the provisioned one (PubSubBroker options instanceId + replySubscription) and
# never creates or deletes it.
resource "google_pubsub_subscription_iam_member" "requesters_read_replies" {
  for_each     = var.requesters
  subscription = google_pubsub_subscription.replies[each.key].id
  role         = "roles/pubsub.subscriber"
  member       = each.value
}

resource "google_pubsub_topic_iam_member" "requesters_publish" {
  for_each = var.requesters
  topic    = google_pubsub_topic.app.id
  role     = "roles/pubsub.publisher"
  member   = each.value
}
