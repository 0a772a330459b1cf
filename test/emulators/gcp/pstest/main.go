// Command pstest serves Google's fake Pub/Sub server (cloud.google.com/go/pubsub/v2/pstest)
// over plain gRPC on a loopback address, for cloudmom's tests and benchmarks.
//
//	pstest -addr 127.0.0.1:8085
//
// pstest's own listener uses gRPC's default 4 MiB message limit, below Pub/Sub's 10 MB per
// message, so the fake's services are registered again on a server of our own that takes
// requests up to 16 MiB. It stops on SIGINT or SIGTERM.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/grpc"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8085", "host:port to listen on (loopback only)")
	flag.Parse()
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		log.Fatalf("bad -addr %q: %v", *addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		log.Fatalf("refusing to listen on %q: loopback addresses only", host)
	}
	// The fake itself, on an ephemeral loopback port nobody uses.
	fake := pstest.NewServerWithAddress("127.0.0.1:0")
	defer fake.Close()

	const limit = 16 << 20
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(limit), grpc.MaxSendMsgSize(limit))
	pb.RegisterPublisherServer(srv, &fake.GServer)
	pb.RegisterSubscriberServer(srv, &fake.GServer)
	pb.RegisterSchemaServiceServer(srv, &fake.GServer)
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("listen %s: %v", *addr, err)
	}
	go func() {
		if err := srv.Serve(lis); err != nil {
			log.Printf("serve: %v", err)
		}
	}()
	fmt.Printf("pstest listening on %s\n", lis.Addr())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	srv.Stop()
}
