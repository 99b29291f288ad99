// Package config embeds the generated CRDs, so that the herald binary checks
// configuration files with exactly the schema the API server enforces.
package config

import _ "embed"

// NotificationChannelCRD is the generated NotificationChannel
// CustomResourceDefinition (crd/bases, written by `make manifests`).
//
//go:embed crd/bases/notify.herald.dev_notificationchannels.yaml
var NotificationChannelCRD []byte
