package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/google/uuid"

	"github.com/msgrunner/msgrunner/client"
)

// A service receives every message of its user once, in order per
// conversation, acks it as read, and sends a reply that is stored once
// however often it is retried.
func Example() {
	token := os.Getenv("MSGRUNNER_TOKEN") // admin token --user <uuid>
	var c *client.Client
	c, err := client.New(client.Config{
		Endpoints: []string{"http://127.0.0.1:8081", "http://127.0.0.1:8082"},
		Token:     func(context.Context) (string, error) { return token, nil },
		OnMessage: func(m client.Message) {
			fmt.Printf("%s #%d: %s\n", m.ConversationID, m.Seq, m.Content)
			_ = c.Ack(context.Background(), m.ID, "read")
		},
		OnState: func(s client.State) {
			if !s.Connected {
				log.Printf("gateway %s dropped: %v (reconnecting)", s.Endpoint, s.Err)
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	go func() {
		if err := c.Run(ctx); errors.Is(err, client.ErrUnauthorized) {
			log.Fatal("the token was refused")
		}
	}()

	peer := uuid.MustParse("0193a5c2-7d3e-7c41-9a3f-1c2d3e4f5a6b")
	sent, err := c.Send(ctx, client.Outgoing{RecipientID: peer, Content: "on my way"})
	var apiErr *client.APIError
	switch {
	case errors.As(err, &apiErr):
		log.Printf("refused: %s (field %s)", apiErr.Code, apiErr.Field) // never retried
	case err != nil:
		log.Printf("not stored before the context ended: %v", err)
	default:
		fmt.Println("stored as seq", sent.Seq)
	}
}
