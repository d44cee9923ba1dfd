// Package groups manages group conversations: creating them, their
// members and roles, and their titles. Every change runs in one
// transaction that takes the group's next seq under its row lock (so
// senders and other changes queue behind it), changes the membership,
// bumps the membership version when members or roles change, and writes
// the change as a system message of the group at that seq. So every
// member's history and resume show who joined or left and when, and a
// member's window of visibility is the seq range between the messages
// that added and removed them.
//
// The system message comes back pending (Change): the caller publishes it
// right after the call (package delivery's AfterCommit with
// Change.MembershipVersion), and the runner's deliver-pending sweep
// delivers it otherwise, as for any message. Messages to a group are sent
// through package outbox (a Message without a RecipientID).
package groups

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/validation"
)

// DefaultMaxMembers is Config.MaxMembers when unset (GROUP_MAX_MEMBERS).
const DefaultMaxMembers = 1000

// MaxTitleRunes bounds a group's title.
const MaxTitleRunes = 200

// Errors of group changes. The transaction is rolled back: nothing was
// written.
var (
	// ErrNotFound: no such group, or the caller never was its member.
	ErrNotFound = errors.New("groups: no such group")
	// ErrNotMember: the caller is not a current member of the group.
	ErrNotMember = errors.New("groups: you are not a member of this group")
	// ErrForbidden: the caller's role does not allow the change.
	ErrForbidden = errors.New("groups: your role in this group does not allow this change")
	// ErrLastOwner: the change would leave the group without an owner.
	ErrLastOwner = errors.New("groups: the group would have no owner left; make another member an owner first")
	// ErrAlreadyMember: a user to add is a current member already.
	ErrAlreadyMember = errors.New("groups: already a member of this group")
	// ErrNoSuchMember: the user to change is not a current member.
	ErrNoSuchMember = errors.New("groups: not a member of this group")
)

// Event types of system messages.
const (
	EventCreated       = "group_created"
	EventMembersAdded  = "members_added"
	EventMemberRemoved = "member_removed"
	EventMemberLeft    = "member_left"
	EventRoleChanged   = "role_changed"
	EventTitleChanged  = "title_changed"
)

// Event is the body of a group's system message.
type Event struct {
	Type string `json:"type"`
	// UserIDs are the members the change is about (added, removed, the
	// one who left, the one whose role changed).
	UserIDs []uuid.UUID `json:"user_ids,omitempty"`
	Role    string      `json:"role,omitempty"`
	Title   string      `json:"title,omitempty"`
}

// Config configures a Service.
type Config struct {
	// MaxMembers caps a group's current members. Default
	// DefaultMaxMembers.
	MaxMembers int
}

// Service changes groups in pool. It is safe for concurrent use.
type Service struct {
	pool       *pgxpool.Pool
	maxMembers int
}

// New returns a Service on pool.
func New(pool *pgxpool.Pool, cfg Config) (*Service, error) {
	if cfg.MaxMembers < 0 {
		return nil, fmt.Errorf("groups: MaxMembers must be positive, got %d", cfg.MaxMembers)
	}
	if cfg.MaxMembers == 0 {
		cfg.MaxMembers = DefaultMaxMembers
	}
	return &Service{pool: pool, maxMembers: cfg.MaxMembers}, nil
}

// MaxMembers is the cap on a group's current members.
func (s *Service) MaxMembers() int { return s.maxMembers }

// Change is a committed change: its system message, still pending, for
// the caller to publish with the membership version it was written at.
type Change struct {
	Message           db.Message
	MembershipVersion int64
}

// View is a group as a member sees it.
type View struct {
	db.Group
	// Members are the current members (only for current members' views).
	Members []db.Member
}

// ParseMembers checks user ids given as strings (a request's member_ids):
// each a UUID, none twice, none the caller's own (the caller is in the
// group already or becomes its owner), at least one; errors name field.
func ParseMembers(field string, caller uuid.UUID, ids []string) ([]uuid.UUID, error) {
	if len(ids) == 0 {
		return nil, validation.Errorf(field, "must list at least one user id")
	}
	out := make([]uuid.UUID, len(ids))
	seen := make(map[uuid.UUID]bool, len(ids))
	for i, v := range ids {
		id, err := uuid.Parse(v)
		switch {
		case err != nil || id == uuid.Nil:
			return nil, validation.Errorf(fmt.Sprintf("%s[%d]", field, i), "must be a user id (a UUID)")
		case id == caller:
			return nil, validation.Errorf(fmt.Sprintf("%s[%d]", field, i), "is your own id: you are a member already")
		case seen[id]:
			return nil, validation.Errorf(fmt.Sprintf("%s[%d]", field, i), "lists %s twice", id)
		}
		seen[id] = true
		out[i] = id
	}
	return out, nil
}

// CheckTitle checks a group title: not blank, valid UTF-8 without control
// characters, at most MaxTitleRunes.
func CheckTitle(title string) error {
	switch {
	case strings.TrimSpace(title) == "":
		return validation.Errorf("title", "must not be empty")
	case !utf8.ValidString(title):
		return validation.Errorf("title", "must be valid UTF-8")
	case utf8.RuneCountInString(title) > MaxTitleRunes:
		return validation.Errorf("title", "is %d characters, over the limit of %d", utf8.RuneCountInString(title), MaxTitleRunes)
	case strings.ContainsFunc(title, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return validation.Errorf("title", "must not contain control characters")
	}
	return nil
}

// CheckRole checks a role name.
func CheckRole(role string) error {
	switch role {
	case db.RoleOwner, db.RoleAdmin, db.RoleMember:
		return nil
	}
	return validation.Errorf("role", `must be "owner", "admin" or "member"`)
}

// Create makes a group titled title with creator as its owner and
// members as members; its first message (seq 1) says so. members must
// have passed ParseMembers (creator excluded); with creator they may not
// exceed the cap.
func (s *Service) Create(ctx context.Context, creator uuid.UUID, title string, members []uuid.UUID) (View, Change, error) {
	if err := CheckTitle(title); err != nil {
		return View{}, Change{}, err
	}
	if len(members)+1 > s.maxMembers {
		return View{}, Change{}, validation.Errorf("member_ids", "has %d members with you, over the limit of %d", len(members)+1, s.maxMembers)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return View{}, Change{}, fmt.Errorf("groups: generating id: %w", err)
	}
	users := append([]uuid.UUID{creator}, members...)
	roles := make([]string, len(users))
	roles[0] = db.RoleOwner
	for i := 1; i < len(roles); i++ {
		roles[i] = db.RoleMember
	}
	var ch Change
	var created time.Time
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if created, err = db.CreateGroup(ctx, tx, id, title); err != nil {
			return err
		}
		if _, err := db.AddMembers(ctx, tx, id, users, roles, 1); err != nil {
			return err
		}
		ch, err = s.record(ctx, tx, id, creator, 1, 1, Event{Type: EventCreated, UserIDs: members, Title: title})
		return err
	})
	if err != nil {
		return View{}, Change{}, err
	}
	// The view is what the transaction wrote: no read after the commit
	// that could fail and make a client retry a create that happened.
	v := View{Group: db.Group{ID: id, Title: title, CreatedAt: created, LastSeq: 1, MembershipVersion: 1, Role: db.RoleOwner, JoinedSeq: 1}}
	for i, u := range users {
		v.Members = append(v.Members, db.Member{UserID: u, Role: roles[i], JoinedSeq: 1})
	}
	slices.SortFunc(v.Members, func(a, b db.Member) int { return bytes.Compare(a.UserID[:], b.UserID[:]) })
	return v, ch, nil
}

// AddMembers adds users (ParseMembers-checked) to group as members; actor
// must be its owner or an admin.
func (s *Service) AddMembers(ctx context.Context, actor, group uuid.UUID, users []uuid.UUID) (Change, error) {
	return s.change(ctx, actor, group, true, func(tx pgx.Tx, lock db.GroupLock, members map[uuid.UUID]string) (Event, error) {
		if !manages(members[actor]) {
			return Event{}, ErrForbidden
		}
		for i, u := range users {
			if members[u] != "" {
				return Event{}, fieldError(fmt.Sprintf("member_ids[%d]", i), ErrAlreadyMember)
			}
		}
		if len(members)+len(users) > s.maxMembers {
			return Event{}, validation.Errorf("member_ids", "would make %d members, over the limit of %d", len(members)+len(users), s.maxMembers)
		}
		roles := make([]string, len(users))
		for i := range roles {
			roles[i] = db.RoleMember
		}
		if _, err := db.AddMembers(ctx, tx, group, users, roles, lock.Seq); err != nil {
			return Event{}, err
		}
		return Event{Type: EventMembersAdded, UserIDs: users}, nil
	})
}

// RemoveMember ends user's membership of group. With actor == user it is
// leaving, which any member may do; otherwise the owner removes anyone
// and an admin removes members. The last owner cannot leave or be
// removed while others remain (ErrLastOwner); when the last member
// leaves, the group is marked deleted and cleanup removes it.
func (s *Service) RemoveMember(ctx context.Context, actor, group, user uuid.UUID) (Change, error) {
	return s.change(ctx, actor, group, true, func(tx pgx.Tx, lock db.GroupLock, members map[uuid.UUID]string) (Event, error) {
		role := members[user]
		switch {
		case role == "":
			return Event{}, fieldError("user_id", ErrNoSuchMember)
		case actor != user && !outranks(members[actor], role):
			return Event{}, ErrForbidden
		case role == db.RoleOwner && owners(members) == 1 && len(members) > 1:
			return Event{}, fieldError("user_id", ErrLastOwner)
		}
		if _, err := db.EndMembership(ctx, tx, group, user, lock.Seq); err != nil {
			return Event{}, err
		}
		if len(members) == 1 {
			if err := db.MarkGroupDeleted(ctx, tx, group); err != nil {
				return Event{}, err
			}
		}
		typ := EventMemberRemoved
		if actor == user {
			typ = EventMemberLeft
		}
		return Event{Type: typ, UserIDs: []uuid.UUID{user}}, nil
	})
}

// SetRole gives user role in group; only an owner changes roles, and the
// last owner cannot step down.
func (s *Service) SetRole(ctx context.Context, actor, group, user uuid.UUID, role string) (Change, error) {
	if err := CheckRole(role); err != nil {
		return Change{}, err
	}
	return s.change(ctx, actor, group, true, func(tx pgx.Tx, lock db.GroupLock, members map[uuid.UUID]string) (Event, error) {
		old := members[user]
		switch {
		case members[actor] != db.RoleOwner:
			return Event{}, ErrForbidden
		case old == "":
			return Event{}, fieldError("user_id", ErrNoSuchMember)
		case old == db.RoleOwner && role != db.RoleOwner && owners(members) == 1:
			return Event{}, fieldError("role", ErrLastOwner)
		}
		if _, err := db.SetMemberRole(ctx, tx, group, user, role); err != nil {
			return Event{}, err
		}
		return Event{Type: EventRoleChanged, UserIDs: []uuid.UUID{user}, Role: role}, nil
	})
}

// SetTitle retitles group; actor must be its owner or an admin.
func (s *Service) SetTitle(ctx context.Context, actor, group uuid.UUID, title string) (Change, error) {
	if err := CheckTitle(title); err != nil {
		return Change{}, err
	}
	return s.change(ctx, actor, group, false, func(tx pgx.Tx, _ db.GroupLock, members map[uuid.UUID]string) (Event, error) {
		if !manages(members[actor]) {
			return Event{}, ErrForbidden
		}
		if err := db.SetGroupTitle(ctx, tx, group, title); err != nil {
			return Event{}, err
		}
		return Event{Type: EventTitleChanged, Title: title}, nil
	})
}

// Get returns group as user sees it: a current member with its members,
// a former member without them; ErrNotFound when user never was one.
func (s *Service) Get(ctx context.Context, user, group uuid.UUID) (View, error) {
	g, err := db.GetGroup(ctx, s.pool, group, user)
	if errors.Is(err, db.ErrNotFound) {
		return View{}, ErrNotFound
	}
	if err != nil {
		return View{}, err
	}
	v := View{Group: g}
	if g.LeftSeq == nil {
		if v.Members, err = db.CurrentMembers(ctx, s.pool, group); err != nil {
			return View{}, err
		}
	}
	return v, nil
}

// change runs one change of group by actor in a transaction: it locks the
// group (taking the seq of the change's system message), reads the
// current members' roles, lets apply make the change (or refuse it), and
// records the event apply returns.
func (s *Service) change(ctx context.Context, actor, group uuid.UUID, membership bool,
	apply func(pgx.Tx, db.GroupLock, map[uuid.UUID]string) (Event, error)) (Change, error) {
	var ch Change
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		lock, err := db.LockGroup(ctx, tx, group, membership)
		if errors.Is(err, db.ErrNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		current, err := db.CurrentMembers(ctx, tx, group)
		if err != nil {
			return err
		}
		roles := make(map[uuid.UUID]string, len(current))
		for _, m := range current {
			roles[m.UserID] = m.Role
		}
		if roles[actor] == "" {
			return ErrNotMember
		}
		ev, err := apply(tx, lock, roles)
		if err != nil {
			return err
		}
		ch, err = s.record(ctx, tx, group, actor, lock.Seq, lock.MembershipVersion, ev)
		return err
	})
	return ch, err
}

// record writes ev as the group's system message at seq.
func (s *Service) record(ctx context.Context, tx pgx.Tx, group, actor uuid.UUID, seq, version int64, ev Event) (Change, error) {
	body, err := json.Marshal(ev)
	if err != nil {
		return Change{}, fmt.Errorf("groups: encoding event: %w", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Change{}, fmt.Errorf("groups: generating id: %w", err)
	}
	m, err := db.InsertSystemMessage(ctx, tx, id, group, actor, seq, body)
	if err != nil {
		return Change{}, err
	}
	return Change{Message: m, MembershipVersion: version}, nil
}

// inTx runs fn in a transaction, committed when fn returns nil and
// rolled back otherwise.
func (s *Service) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// manages reports whether role may add members and retitle.
func manages(role string) bool { return role == db.RoleOwner || role == db.RoleAdmin }

// outranks reports whether a member with role actor may remove one with
// role target: owners remove anyone, admins remove members.
func outranks(actor, target string) bool {
	switch actor {
	case db.RoleOwner:
		return true
	case db.RoleAdmin:
		return target == db.RoleMember
	}
	return false
}

func owners(members map[uuid.UUID]string) int {
	n := 0
	for _, r := range members {
		if r == db.RoleOwner {
			n++
		}
	}
	return n
}

// FieldError is a refusal about one field of the request (a user id in
// member_ids, the user_id of the path, the role).
type FieldError struct {
	Field string
	Err   error
}

// Error names the field and the refusal.
func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns the refusal (ErrAlreadyMember, ErrNoSuchMember,
// ErrLastOwner).
func (e *FieldError) Unwrap() error { return e.Err }

func fieldError(field string, err error) error { return &FieldError{Field: field, Err: err} }
