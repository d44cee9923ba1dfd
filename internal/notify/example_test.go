package notify_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"

	"github.com/msgrunner/msgrunner/internal/notify"
	"github.com/msgrunner/msgrunner/internal/notify/notifytest"
)

// The built-in templates render each channel's notification; the email's
// HTML part escapes what the sender wrote.
func ExampleTemplates_Render() {
	tpl, err := notify.LoadTemplates("")
	if err != nil {
		log.Fatal(err)
	}
	v := notify.Vars{SenderName: "Alice", Preview: `<b>lunch</b> at 1?`}
	for _, ch := range []string{notify.ChannelPush, notify.ChannelSMS} {
		c, err := tpl.Render("new_message", ch, v)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: %q %q\n", ch, c.Title, c.Body)
	}
	c, err := tpl.Render("new_message", notify.ChannelEmail, v)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("email subject:", c.Title)
	fmt.Println("email HTML escapes:", !strings.Contains(c.HTML, "<b>lunch"))
	_, err = tpl.Render("reaction", notify.ChannelPush, v)
	fmt.Println(errors.Is(err, notify.ErrNoTemplate))

	// Output:
	// push: "New message from Alice" "<b>lunch</b> at 1?"
	// sms: "" "New message from Alice: <b>lunch</b> at 1?"
	// email subject: New message from Alice
	// email HTML escapes: true
	// true
}

// The SMS client speaks Twilio's API; here it talks to the local server
// that stands in for Twilio in tests. A refusal the provider calls final is
// ErrPermanent, so the notification job does not retry it.
func ExampleTwilio_SendSMS() {
	srv, err := notifytest.NewSMSServer("", "AC123", "twilio-secret")
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	sms, err := notify.NewTwilio(notify.SMSConfig{BaseURL: srv.URL, AccountSID: "AC123", AuthToken: "twilio-secret", From: "+15005550006"})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	id, err := sms.SendSMS(ctx, notify.SMS{To: "+14155550123", Body: "New message from Alice", IdempotencyKey: "notification-1"})
	fmt.Println(id, err)
	r := srv.Requests()[0]
	fmt.Println(r.To, r.From, r.Body, r.IdempotencyKey)

	srv.Answer("+14155550199", notifytest.SMSInvalidNumber)
	_, err = sms.SendSMS(ctx, notify.SMS{To: "+14155550199", Body: "hi"})
	fmt.Println("permanent:", errors.Is(err, notify.ErrPermanent))
	_, err = sms.SendSMS(ctx, notify.SMS{To: "0415 555", Body: "hi"})
	fmt.Println("permanent:", errors.Is(err, notify.ErrPermanent), len(srv.Requests()), "requests")

	// Output:
	// SM00000000000000000000000000000001 <nil>
	// +14155550123 +15005550006 New message from Alice notification-1
	// permanent: true
	// permanent: true 2 requests
}
