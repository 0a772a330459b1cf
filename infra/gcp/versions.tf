# cloudmom example topology on Google Cloud: Pub/Sub topics and subscriptions, dead-letter
# topics and policies, a reply topic, two Cloud Functions (2nd gen) and least-privilege
# service accounts. See docs/gcp.md for how to deploy and what is validated offline.
terraform {
  required_version = ">= 1.5"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0, < 8.0"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}
