output "topic" {
  description = "Topic publish() sends to (PubSubBroker option topic)."
  value       = google_pubsub_topic.app.id
}

output "dead_letter_topic" {
  description = "Dead-letter topic (PubSubBroker option deadLetterTopic)."
  value       = google_pubsub_topic.dead_letter.id
}

output "reply_topic" {
  description = "Reply topic (PubSubBroker option replyTopic)."
  value       = google_pubsub_topic.replies.id
}

output "rpc_function_uri" {
  description = "URI of the CloudEvent function."
  value       = google_cloudfunctions2_function.rpc.service_config[0].uri
}

output "reply_subscriptions" {
  description = "Each requester's reply subscription, by instance id (PubSubBroker options instanceId + replySubscription)."
  value       = { for id, s in google_pubsub_subscription.replies : id => s.name }
}
