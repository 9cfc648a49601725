package hub

import "context"

// Shortcuts the unit tests use; the handlers go through Publish and
// SubscribeWith.

// publish publishes without a bound on the wait for room.
func (h *Hub) publish(pubs []Publication) ([]PublishResult, error) {
	return h.publishWait(context.Background(), pubs, 0)
}

// register adds a subscriber without a filter (registerWith).
func (h *Hub) register(refs []TopicRef, queueLen int) (*Subscription, ID, error) {
	return h.RegisterWith(refs, queueLen, nil)
}
