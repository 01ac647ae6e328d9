package rillimport_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rill-authd/rill-authd/internal/testenv"
	"github.com/rill-authd/rill-authd/token"
)

var ctx = context.Background()

// newDatabase creates an empty database of the test's own, dropped when the test ends, and
// returns its URL.
func newDatabase(t testing.TB) string {
	u, _ := testenv.PostgresDB(t, "")
	return u
}

// rillDB is a database with Rill's schema (testdata/rill_schema.sql) that a test seeds.
type rillDB struct {
	t    testing.TB
	URL  string
	conn *pgx.Conn
	ids  map[string]string // a test's name for a row -> its UUID
}

func newRillDB(t testing.TB) *rillDB {
	t.Helper()
	u := newDatabase(t)
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	ddl, err := os.ReadFile(filepath.Join(testenv.ModuleRoot(), "rillimport", "testdata", "rill_schema.sql"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, string(ddl)); err != nil {
		t.Fatalf("load rill_schema.sql: %v", err)
	}
	return &rillDB{t: t, URL: u, conn: conn, ids: map[string]string{}}
}

func (db *rillDB) exec(sql string, args ...any) {
	db.t.Helper()
	if _, err := db.conn.Exec(ctx, sql, args...); err != nil {
		db.t.Fatalf("%s: %v", sql, err)
	}
}

// id is the UUID of the row a test calls name, made the first time it is asked for.
func (db *rillDB) id(name string) string {
	if id, ok := db.ids[name]; ok {
		return id
	}
	db.ids[name] = newUUID().String()
	return db.ids[name]
}

func newUUID() token.ID {
	var id token.ID
	rand.Read(id[:])
	id[6] = id[6]&0x0f | 0x40 // version 4, as uuid.New
	id[8] = id[8]&0x3f | 0x80
	return id
}

func (db *rillDB) org(name string) {
	db.exec("INSERT INTO orgs (id, name) VALUES ($1, $2)", db.id("org:"+name), name)
}

// project adds a project; with host set, a prod deployment its primary_deployment_id points at.
func (db *rillDB) project(org, name, host, instance string) {
	pid := db.id("project:" + org + "/" + name)
	db.exec("INSERT INTO projects (id, org_id, name, primary_branch) VALUES ($1, $2, $3, 'main')", pid, db.id("org:"+org), name)
	if host != "" {
		db.deploy(org, name, host, instance, "main")
	}
}

// deploy gives a project a new prod deployment, as Rill does on a redeploy.
func (db *rillDB) deploy(org, name, host, instance, branch string) {
	pid, did := db.id("project:"+org+"/"+name), newUUID().String()
	db.exec(`INSERT INTO deployments (id, project_id, environment, branch, runtime_host, runtime_instance_id, runtime_audience, status)
		VALUES ($1, $2, 'prod', $3, $4, $5, $4, 2)`, did, pid, branch, host, instance)
	db.exec("UPDATE projects SET primary_deployment_id = $1 WHERE id = $2", did, pid)
}

func (db *rillDB) user(email, name string, superuser bool) {
	db.exec("INSERT INTO users (id, email, display_name, superuser) VALUES ($1, $2, $3, $4)", db.id("user:"+email), email, name, superuser)
}

// orgMember binds a user to an org role, looked up by name as Rill does.
func (db *rillDB) orgMember(org, email, role, attributes string) {
	db.exec(`INSERT INTO users_orgs_roles (user_id, org_id, org_role_id, attributes)
		VALUES ($1, $2, (SELECT id FROM org_roles WHERE name = $3), $4)`, db.id("user:"+email), db.id("org:"+org), role, attributes)
}

func (db *rillDB) projectMember(org, project, email, role string, restricted bool) {
	db.exec(`INSERT INTO users_projects_roles (user_id, project_id, project_role_id, restrict_resources)
		VALUES ($1, $2, (SELECT id FROM project_roles WHERE name = $3), $4)`,
		db.id("user:"+email), db.id("project:"+org+"/"+project), role, restricted)
}

// restrictedMember binds a user to a project role limited to resources (a JSON list of Rill's
// {"type", "name"}), as `rill user set-resources` does (0089.sql).
func (db *rillDB) restrictedMember(org, project, email, role, resources string) {
	db.exec(`INSERT INTO users_projects_roles (user_id, project_id, project_role_id, restrict_resources, resources)
		VALUES ($1, $2, (SELECT id FROM project_roles WHERE name = $3), true, $4)`,
		db.id("user:"+email), db.id("project:"+org+"/"+project), role, resources)
}

// restrictedGroupRole binds a group to a project role limited to resources.
func (db *rillDB) restrictedGroupRole(org, group, project, role, resources string) {
	db.exec(`INSERT INTO usergroups_projects_roles (usergroup_id, project_id, project_role_id, restrict_resources, resources)
		VALUES ($1, $2, (SELECT id FROM project_roles WHERE name = $3), true, $4)`,
		db.id("group:"+org+"/"+group), db.id("project:"+org+"/"+project), role, resources)
}

func (db *rillDB) group(org, name string, managed bool, members ...string) {
	gid := db.id("group:" + org + "/" + name)
	db.exec("INSERT INTO usergroups (id, org_id, name, managed) VALUES ($1, $2, $3, $4)", gid, db.id("org:"+org), name, managed)
	for _, m := range members {
		db.exec("INSERT INTO usergroups_users (usergroup_id, user_id) VALUES ($1, $2)", gid, db.id("user:"+m))
	}
}

func (db *rillDB) groupOrgRole(org, group, role string) {
	db.exec(`INSERT INTO usergroups_orgs_roles (usergroup_id, org_id, org_role_id)
		VALUES ($1, $2, (SELECT id FROM org_roles WHERE name = $3))`, db.id("group:"+org+"/"+group), db.id("org:"+org), role)
}

func (db *rillDB) groupProjectRole(org, group, project, role string) {
	db.exec(`INSERT INTO usergroups_projects_roles (usergroup_id, project_id, project_role_id)
		VALUES ($1, $2, (SELECT id FROM project_roles WHERE name = $3))`,
		db.id("group:"+org+"/"+group), db.id("project:"+org+"/"+project), role)
}

// service adds a service with an optional org role and project roles ("project=role").
func (db *rillDB) service(org, name, orgRole, attributes string, projectRoles ...string) {
	sid := db.id("service:" + org + "/" + name)
	db.exec("INSERT INTO service (id, org_id, name, attributes) VALUES ($1, $2, $3, $4)", sid, db.id("org:"+org), name, attributes)
	if orgRole != "" {
		db.exec(`INSERT INTO service_orgs_roles (service_id, org_id, org_role_id)
			VALUES ($1, $2, (SELECT id FROM org_roles WHERE name = $3))`, sid, db.id("org:"+org), orgRole)
	}
	for _, pr := range projectRoles {
		project, role, _ := strings.Cut(pr, "=")
		db.exec(`INSERT INTO service_projects_roles (service_id, project_id, project_role_id)
			VALUES ($1, $2, (SELECT id FROM project_roles WHERE name = $3))`, sid, db.id("project:"+org+"/"+project), role)
	}
}

// rillToken is a token minted the way Rill mints one (admin/pkg/authtoken/authtoken.go):
// NewRandom takes a UUID and 24 random bytes; String is rill_<type>_ followed by
// big.Int(id ‖ secret).Text(62), shorter when the id starts with zero bytes; SecretHash is the
// SHA-256 of the secret, stored as secret_hash under the UUID.
type rillToken struct {
	ID     token.ID
	Text   string
	Secret [24]byte
}

func mintRill(typ string, id token.ID) rillToken {
	t := rillToken{ID: id}
	rand.Read(t.Secret[:])
	payload := make([]byte, 40)
	copy(payload[:16], id[:])
	copy(payload[16:], t.Secret[:])
	t.Text = "rill_" + typ + "_" + new(big.Int).SetBytes(payload).Text(62)
	return t
}

func (t rillToken) hash() [32]byte { return sha256.Sum256(t.Secret[:]) }

// userToken issues a user token as IssueUserAuthToken does (admin/auth_token.go); representing
// names the user it acts as ("" for none).
func (db *rillDB) userToken(email, representing string, expires *time.Time, id token.ID) rillToken {
	tk := mintRill("usr", id)
	h := tk.hash()
	var rep any
	if representing != "" {
		rep = db.id("user:" + representing)
	}
	db.exec(`INSERT INTO user_auth_tokens (id, secret_hash, user_id, display_name, auth_client_id, representing_user_id, expires_on)
		VALUES ($1, $2, $3, $4, '12345678-0000-0000-0000-000000000002', $5, $6)`, tk.ID.String(), h[:], db.id("user:"+email), "cli token", rep, expires)
	return tk
}

func (db *rillDB) serviceToken(org, service string, expires *time.Time) rillToken {
	tk := mintRill("svc", newUUID())
	h := tk.hash()
	db.exec("INSERT INTO service_auth_tokens (id, secret_hash, service_id, expires_on) VALUES ($1, $2, $3, $4)",
		tk.ID.String(), h[:], db.id("service:"+org+"/"+service), expires)
	return tk
}

// fixture is the Rill deployment most tests import.
type fixture struct {
	db                                     *rillDB
	alice, bob, carol, carolOld, rep, erin rillToken
	dave                                   rillToken
	bot, loader, botOld                    rillToken
}

func seed(t testing.TB) *fixture {
	db := newRillDB(t)
	f := &fixture{db: db}
	db.org("Acme") // Rill's names are case-insensitive; ours are lower case
	db.org("beta")
	db.project("Acme", "web", "https://rt1.example.com", "inst-web-1")
	db.project("Acme", "hibernated", "", "")
	db.project("beta", "api", "https://rt2.example.com", "inst-api-1")

	db.user("alice@acme.io", "Alice", false)
	db.user("bob@acme.io", "Bob", false)
	db.user("Carol@Example.com", "Carol", false)
	db.user("dave@rilldata.com", "Dave", true)
	db.user("erin@beta.io", "Erin", false)

	db.orgMember("Acme", "alice@acme.io", "admin", "{}")
	db.orgMember("Acme", "bob@acme.io", "viewer", "{}")
	db.orgMember("Acme", "Carol@Example.com", "guest", `{"tier": "gold", "seats": 3}`)
	db.projectMember("Acme", "web", "Carol@Example.com", "viewer", false)
	// Limited to some resources (0089.sql): carol to an explore and a canvas (the explore named
	// twice); erin to nothing on hibernated; bob on hibernated to the union of his own binding
	// (nothing) and his partners group's (an explore), and on web not at all, as the analysts
	// group's binding there is not limited.
	db.restrictedMember("Acme", "hibernated", "Carol@Example.com", "editor",
		`[{"type":"rill.runtime.v1.Explore","name":"carol_dash"},{"type":"rill.runtime.v1.Canvas","name":"exec"},{"type":"rill.runtime.v1.Explore","name":"carol_dash"}]`)
	db.restrictedMember("Acme", "hibernated", "erin@beta.io", "viewer", `[]`)
	db.restrictedMember("Acme", "hibernated", "bob@acme.io", "viewer", `[]`)
	// erin is in both orgs: each sets its own groups and attributes for her.
	db.orgMember("Acme", "erin@beta.io", "viewer", `{"region": "us"}`)
	db.projectMember("Acme", "web", "erin@beta.io", "viewer", false)

	// The managed groups Rill keeps per org (0061.sql, 0063.sql) and two of an admin's.
	db.group("Acme", "autogroup:users", true, "alice@acme.io", "bob@acme.io", "Carol@Example.com")
	db.group("Acme", "autogroup:members", true, "alice@acme.io", "bob@acme.io")
	db.group("Acme", "autogroup:guests", true, "Carol@Example.com")
	db.group("Acme", "analysts", false, "bob@acme.io")
	db.groupProjectRole("Acme", "analysts", "web", "editor")
	db.group("Acme", "partners", false, "bob@acme.io")
	db.restrictedGroupRole("Acme", "partners", "hibernated", "viewer", `[{"type":"rill.runtime.v1.Explore","name":"partner_view"}]`)
	db.restrictedGroupRole("Acme", "partners", "web", "viewer", `[{"type":"rill.runtime.v1.Explore","name":"partner_view"}]`)
	db.group("beta", "ops", false, "erin@beta.io")
	db.groupOrgRole("beta", "ops", "editor")

	db.service("Acme", "ci-bot", "", `{"team": "platform", "level": 3}`, "web=admin")
	db.service("beta", "loader", "admin", "{}")

	past, future := time.Now().Add(-time.Hour), time.Now().Add(30*24*time.Hour)
	zeroLead := newUUID()
	zeroLead[0], zeroLead[1] = 0, 0 // its text is shorter than 54 characters
	f.alice = db.userToken("alice@acme.io", "", nil, zeroLead)
	f.bob = db.userToken("bob@acme.io", "", &future, newUUID())
	f.carol = db.userToken("Carol@Example.com", "", nil, newUUID())
	f.carolOld = db.userToken("Carol@Example.com", "", &past, newUUID())
	f.rep = db.userToken("dave@rilldata.com", "bob@acme.io", &future, newUUID()) // a superuser acting as bob
	f.erin = db.userToken("erin@beta.io", "", nil, newUUID())
	// An OAuth refresh token (0084.sql). Rill's bearer authentication takes it as it takes any
	// user token (admin/server/auth/middleware.go parseClaimsFromToken -> admin/auth_token.go
	// ValidateAuthToken, which never looks at refresh; refresh_token_test.go asserts that a
	// rotated refresh token validates), so the import brings it as a user token.
	db.exec("UPDATE user_auth_tokens SET refresh = true WHERE id = $1", f.erin.ID.String())
	f.dave = db.userToken("dave@rilldata.com", "", nil, newUUID())
	f.bot = db.serviceToken("Acme", "ci-bot", nil)
	f.botOld = db.serviceToken("Acme", "ci-bot", &past)
	f.loader = db.serviceToken("beta", "loader", nil)
	return f
}
