package farm

import (
	"context"
	"sync"
	"time"

	"github.com/hilfarm/hilfarm/farm/store"
)

// IdempotencyWindow is how long an Idempotency-Key names the job it made:
// the same key from the same token within it gets that job back.
const IdempotencyWindow = 24 * time.Hour

// MaxIdempotencyKey bounds an Idempotency-Key header's length.
const MaxIdempotencyKey = 255

// keyLocks serialises submissions that carry the same idempotency key, so
// two concurrent retries make one job.
type keyLocks struct {
	mu    sync.Mutex
	locks map[store.IdempotencyKey]*keyLock
}

type keyLock struct {
	mu   sync.Mutex
	refs int
}

func (k *keyLocks) lock(key store.IdempotencyKey) func() {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[store.IdempotencyKey]*keyLock{}
	}
	l := k.locks[key]
	if l == nil {
		l = &keyLock{}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}

// SubmitIdempotent is Submit for a submission with an idempotency key: when
// the same key (from the same actor) made a job within IdempotencyWindow,
// it returns that job and true, and stores nothing; else it submits and
// records the key with the new job, in one transaction.
func (c *Controller) SubmitIdempotent(ctx context.Context, s Submission, key store.IdempotencyKey) (*JobView, bool, error) {
	unlock := c.idem.lock(key)
	defer unlock()
	id, err := c.db.IdempotentJob(ctx, key, c.now().Add(-IdempotencyWindow))
	if err != nil {
		return nil, false, err
	}
	if id != "" {
		j, err := c.Job(ctx, id)
		return j, err == nil, err
	}
	s.idempotency = &key
	j, err := c.Submit(ctx, s)
	return j, false, err
}
