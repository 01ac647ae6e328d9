package daemon

import (
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// healthEvery is how often gRPC health follows the replica's staleness: a flip is seen by a
// health checker within this (plus its own interval).
const healthEvery = 100 * time.Millisecond

// healthServices are the names gRPC health answers for: the server as a whole ("") and the
// ext_authz service, which Envoy's grpc_health_check may name.
var healthServices = []string{"", authv3.Authorization_ServiceDesc.ServiceName}

// setHealth sets every health service name to SERVING or NOT_SERVING.
func (d *Daemon) setHealth(serving bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	for _, name := range healthServices {
		d.health.SetServingStatus(name, st)
	}
}

// followStaleness keeps gRPC health in step with the check path's staleness (the one source,
// d.stale.stale): NOT_SERVING while this replica denies checks because it cannot confirm it is
// current, SERVING again once it can. A load balancer's health check then takes a stale
// replica out as /readyz does. After Shutdown the health server ignores updates, so this never
// turns a stopping daemon back to SERVING.
func (d *Daemon) followStaleness() {
	if d.stale == nil {
		d.setHealth(true)
		return
	}
	_, stale := d.stale.stale()
	d.setHealth(!stale)
	d.healthStop, d.healthDone = make(chan struct{}), make(chan struct{})
	stop := d.healthStop
	go func() {
		defer close(d.healthDone)
		t := time.NewTicker(healthEvery)
		defer t.Stop()
		serving := !stale
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			reason, stale := d.stale.stale()
			if stale == !serving {
				continue
			}
			serving = !stale
			d.setHealth(serving)
			if stale {
				d.log.Warn("gRPC health: NOT_SERVING", "reason", reason)
			} else {
				d.log.Info("gRPC health: SERVING again: this replica is current")
			}
		}
	}()
}

// stopFollowingStaleness ends followStaleness, if it runs.
func (d *Daemon) stopFollowingStaleness() {
	if d.healthDone == nil {
		return
	}
	close(d.healthStop)
	<-d.healthDone
	d.healthDone = nil
}
