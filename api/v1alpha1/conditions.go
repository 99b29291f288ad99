package v1alpha1

// Condition types shared by NotificationChannel and SystemEvent. Each names its
// polarity: whether True is the healthy state.
const (
	// ConditionReady is True ("normal-true") when the channel's current
	// generation is applied and serving: the rollout of its pod template
	// complete, and every replica the spec asks for ready. It is False while
	// pods of an older generation serve (a rollout, an apply that failed), so
	// a Ready with the condition's observedGeneration equal to the channel's
	// generation is that generation's. For a SystemEvent: its current revision
	// has been delivered (the streamers own it).
	ConditionReady = "Ready"

	// ConditionChannelFound is True ("normal-true") when a SystemEvent's
	// channelRef names a NotificationChannel that exists in its namespace;
	// False with reason ChannelNotFound otherwise. The operator owns it: no
	// streamer runs for a missing channel to say so.
	ConditionChannelFound = "ChannelFound"

	// ConditionProgressing is True ("abnormal-true") while a change is being
	// rolled out; it turns False once the rollout completed or got stuck.
	ConditionProgressing = "Progressing"

	// ConditionDegraded is True ("abnormal-true") when something needs a person:
	// its reason says what (a missing Secret, an invalid key, a stuck rollout).
	ConditionDegraded = "Degraded"

	// ConditionStalled is True ("abnormal-true") when the operator cannot go on
	// with the channel's generation and does not retry it (reason InvalidSpec):
	// a new generation, or an operator restart, tries again. It is absent
	// otherwise, which tools such as kstatus read as False.
	ConditionStalled = "Stalled"

	// ConditionBrokerReachable is True ("normal-true") when the channel's
	// streamer pods reach its NATS broker and read its stream; False with
	// reason BrokerUnreachable (or IncompatibleStream) when one cannot. Only
	// channels with broker.type NATS have it: the operator holds no NATS
	// credentials, so the streamers own it (field manager herald-streamer).
	// Its message names the pod it speaks for, and its observedGeneration
	// the channel generation that pod runs. All pods share it: a pod that
	// cannot reach NATS writes False naming itself and refreshes it every
	// 30 s while the outage lasts; a pod that reaches NATS writes True only
	// over a False that names itself, is of an older generation, or has not
	// been refreshed for 90 s (its pod recovered elsewhere or is gone). The
	// operator folds a False into Degraded.
	ConditionBrokerReachable = "BrokerReachable"

	// ConditionSecretsUsable is True ("normal-true") when the Secrets the
	// channel names (auth.keySecretRef, broker.nats.credentialsSecretRef,
	// http.tls.secretRef) exist and hold what the streamers serve with;
	// False with reason SecretNotFound, InvalidKey, InvalidBrokerCredentials
	// or InvalidCertificate otherwise, the message saying what to fix. The
	// operator reads no Secret, so the streamer pods, which read them anyway,
	// own it (field manager herald-streamer-secrets): each watches them from
	// its start, also while it waits for one (alive, not ready), and reports
	// a change within seconds. All pods share it by the rules of
	// BrokerReachable: its message names the pod it speaks for ("pod <pod> at
	// <time>: …"), its observedGeneration the channel generation, and a False
	// is refreshed every 30 s and stale after 90 s. The operator folds a False
	// of the channel's current generation into Degraded and Ready; until a
	// pod has reported for that generation, they say AwaitingStreamer.
	ConditionSecretsUsable = "SecretsUsable"
)

// Condition reasons. They are API: a person or a tool acts on them, so they
// are never renamed.
const (
	// ReasonReconciling: the operator is applying the current generation.
	ReasonReconciling = "Reconciling"
	// ReasonAvailable: every desired replica is ready.
	ReasonAvailable = "Available"
	// ReasonReplicasNotReady: fewer streamer pods are ready than the channel
	// asks for; the message says how many.
	ReasonReplicasNotReady = "ReplicasNotReady"
	// ReasonRollingOut: enough pods are ready, but not all run the current
	// pod template yet: the Deployment is rolling out the new generation.
	ReasonRollingOut = "RollingOut"
	// ReasonAsExpected: nothing needs a person (Degraded False).
	ReasonAsExpected = "AsExpected"
	// ReasonRolloutComplete: the rollout of the current generation finished.
	ReasonRolloutComplete = "RolloutComplete"
	// ReasonRolloutStuck: the rollout made no progress within its deadline.
	ReasonRolloutStuck = "RolloutStuck"
	// ReasonSecretNotFound: the Secret named by auth.keySecretRef,
	// broker.nats.credentialsSecretRef or http.tls.secretRef does not exist
	// (reported by the streamers, SecretsUsable False).
	ReasonSecretNotFound = "SecretNotFound"
	// ReasonInvalidKey: the key Secret exists but holds no usable key for the
	// configured algorithms (wrong type, malformed PEM, HMAC key too short).
	ReasonInvalidKey = "InvalidKey"
	// ReasonInvalidBrokerCredentials: the Secret named by
	// broker.nats.credentialsSecretRef exists but its entries cannot be used
	// (two ways to authenticate, a user without a password, a malformed
	// credentials file or CA); the message says which.
	ReasonInvalidBrokerCredentials = "InvalidBrokerCredentials"
	// ReasonInvalidCertificate: the Secret named by http.tls.secretRef exists
	// but holds no certificate and key the streamers can serve ("tls.crt",
	// "tls.key"); the message says what is wrong.
	ReasonInvalidCertificate = "InvalidCertificate"
	// ReasonSecretsValid: the channel's Secrets exist and are usable
	// (SecretsUsable True).
	ReasonSecretsValid = "SecretsValid"
	// ReasonAwaitingStreamer: no streamer pod has reported on the channel's
	// Secrets for its current generation yet (Degraded Unknown, and Ready
	// False while no pod is ready): the pods have not started, or have not
	// reached the API server.
	ReasonAwaitingStreamer = "AwaitingStreamer"
	// ReasonBrokerNotSupported: the channel's broker type is not available
	// in this version's streamers. No longer reported: every broker type of
	// the API is; kept because reasons are never renamed or reused.
	ReasonBrokerNotSupported = "BrokerNotSupported"
	// ReasonBrokerConnected: a streamer pod reaches the channel's NATS
	// broker and reads its stream (BrokerReachable True).
	ReasonBrokerConnected = "BrokerConnected"
	// ReasonBrokerUnreachable: a streamer pod has not reached the channel's
	// NATS broker for longer than the readiness grace; the message names the
	// pod, since when, the URL it tried (without credentials), the error, and
	// what to check. BrokerReachable False, and Degraded True.
	ReasonBrokerUnreachable = "BrokerUnreachable"
	// ReasonIncompatibleStream: the channel's JetStream stream exists with a
	// setting Herald does not own and cannot work with; the message names
	// the stream and the field. Herald never changes such a stream.
	ReasonIncompatibleStream = "IncompatibleStream"
	// ReasonReconcileFailed: applying an owned object failed; the message has
	// the API server's answer.
	// Retried with backoff.
	ReasonReconcileFailed = "ReconcileFailed"
	// ReasonInvalidSpec: the operator cannot turn the spec into the streamer
	// objects (such as no streamer image at all: no spec.image, and an
	// operator without a default); the message says why. Nothing is applied, and the channel is Stalled
	// until it changes.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonChannelNotFound: a SystemEvent names a channel that does not exist
	// in its namespace (ChannelFound False).
	ReasonChannelNotFound = "ChannelNotFound"
	// ReasonChannelExists: a SystemEvent's channel exists (ChannelFound True).
	ReasonChannelExists = "ChannelExists"
	// ReasonDelivered: a SystemEvent revision has been written to the channel's log.
	ReasonDelivered = "Delivered"
	// ReasonScheduled: a SystemEvent waits for its deliverAt time.
	ReasonScheduled = "Scheduled"
	// ReasonExpired: a SystemEvent's expiresAt has passed.
	ReasonExpired = "Expired"
	// ReasonDataTooLarge: a SystemEvent's encoded data exceeds what the
	// streamer announces (32 KiB).
	ReasonDataTooLarge = "DataTooLarge"
	// ReasonInvalidData: a SystemEvent's data cannot be encoded as JSON.
	ReasonInvalidData = "InvalidData"
)
