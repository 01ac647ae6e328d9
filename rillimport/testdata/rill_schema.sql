-- A faithful subset of the final schema of Rill's admin database: the tables that
-- `rill-authd import-rill` reads, as rilldata/rill's migrations
-- (admin/database/postgres/migrations/*.sql, through 0098.sql) leave them. Kept: every column
-- the import reads, the keys, unique indexes and foreign keys around them, and the roles the
-- migrations seed (by name only: their ids are generated, so the import looks roles up by
-- name). Left out: columns and tables the import never reads (quotas, billing, assets, git,
-- deployment and embed tokens, invites, ...).
--
-- Sources: 0001.sql (orgs, projects, deployments), 0002.sql (users, usergroups,
-- usergroups_users, auth_clients, user_auth_tokens), the role migration after the squash
-- (org_roles, project_roles, users_*_roles, usergroups_*_roles), the service and
-- service_auth_tokens migration, 0008.sql (user_auth_tokens.representing_user_id, expires_on),
-- 0061.sql (usergroups.managed; collaborator renamed editor; org role guest with a generated
-- id), 0063.sql (autogroup:* names), 0064.sql (admin flags), 0074.sql
-- (deployments.environment, owner_user_id), 0075.sql (service_orgs_roles,
-- service_projects_roles, service.attributes), 0083.sql (users_orgs_roles.attributes),
-- 0084.sql (user_auth_tokens.refresh), 0089.sql (restrict_resources on project role bindings),
-- 0090.sql (projects.prod_branch/prod_deployment_id renamed primary_branch/primary_deployment_id).

CREATE EXTENSION IF NOT EXISTS "uuid-ossp";

CREATE TABLE orgs (
	id UUID DEFAULT uuid_generate_v4() PRIMARY KEY,
	name TEXT NOT NULL,
	display_name TEXT NOT NULL DEFAULT '',
	description TEXT NOT NULL DEFAULT '',
	created_on TIMESTAMPTZ DEFAULT now() NOT NULL,
	updated_on TIMESTAMPTZ DEFAULT now() NOT NULL
);
CREATE UNIQUE INDEX orgs_name_idx ON orgs (lower(name));

CREATE TABLE projects (
	id UUID DEFAULT uuid_generate_v4() PRIMARY KEY,
	org_id UUID NOT NULL REFERENCES orgs (id) ON DELETE RESTRICT,
	name TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	public BOOLEAN NOT NULL DEFAULT false,
	primary_branch TEXT NOT NULL,
	prod_slots INTEGER NOT NULL DEFAULT 2,
	created_on TIMESTAMPTZ DEFAULT now() NOT NULL,
	updated_on TIMESTAMPTZ DEFAULT now() NOT NULL
);
CREATE UNIQUE INDEX projects_name_idx ON projects (org_id, lower(name));

CREATE TABLE users (
	id UUID DEFAULT uuid_generate_v4() PRIMARY KEY,
	email TEXT NOT NULL,
	display_name TEXT NOT NULL,
	photo_url TEXT,
	superuser BOOLEAN NOT NULL DEFAULT FALSE,
	created_on TIMESTAMPTZ DEFAULT now() NOT NULL,
	updated_on TIMESTAMPTZ DEFAULT now() NOT NULL,
	active_on TIMESTAMPTZ DEFAULT now() NOT NULL
);
CREATE UNIQUE INDEX users_email_idx ON users (lower(email));

CREATE TABLE deployments (
	id UUID DEFAULT uuid_generate_v4() PRIMARY KEY,
	project_id UUID NOT NULL REFERENCES projects (id) ON DELETE RESTRICT,
	owner_user_id UUID REFERENCES users (id) ON DELETE SET NULL,
	environment TEXT NOT NULL,
	branch TEXT NOT NULL,
	runtime_host TEXT NOT NULL,
	runtime_instance_id TEXT NOT NULL,
	runtime_audience TEXT NOT NULL,
	status INTEGER NOT NULL,
	status_message TEXT NOT NULL DEFAULT '',
	created_on TIMESTAMPTZ DEFAULT now() NOT NULL,
	updated_on TIMESTAMPTZ DEFAULT now() NOT NULL,
	used_on TIMESTAMPTZ DEFAULT now() NOT NULL
);
CREATE INDEX deployments_project_id_idx ON deployments (project_id);

ALTER TABLE projects ADD COLUMN primary_deployment_id UUID REFERENCES deployments ON DELETE SET NULL;
CREATE UNIQUE INDEX projects_deployment_id_idx ON projects (primary_deployment_id);

CREATE TABLE usergroups (
	id UUID DEFAULT uuid_generate_v4() PRIMARY KEY,
	org_id UUID NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	managed BOOLEAN NOT NULL DEFAULT false,
	created_on TIMESTAMPTZ DEFAULT now() NOT NULL,
	updated_on TIMESTAMPTZ DEFAULT now() NOT NULL
);
CREATE UNIQUE INDEX usergroups_name_idx ON usergroups (org_id, lower(name));

CREATE TABLE usergroups_users (
	usergroup_id UUID NOT NULL REFERENCES usergroups (id) ON DELETE CASCADE,
	user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	PRIMARY KEY (usergroup_id, user_id)
);
CREATE INDEX usergroups_users_user_usergroup_idx ON usergroups_users (user_id, usergroup_id);

CREATE TABLE org_roles (
	id UUID DEFAULT uuid_generate_v4() PRIMARY KEY,
	name TEXT NOT NULL,
	read_org BOOLEAN NOT NULL,
	manage_org BOOLEAN NOT NULL,
	read_projects BOOLEAN NOT NULL,
	create_projects BOOLEAN NOT NULL,
	manage_projects BOOLEAN NOT NULL,
	read_org_members BOOLEAN NOT NULL,
	manage_org_members BOOLEAN NOT NULL,
	guest BOOLEAN NOT NULL DEFAULT false,
	admin BOOLEAN NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX org_roles_name_idx ON org_roles (lower(name));

CREATE TABLE project_roles (
	id UUID DEFAULT uuid_generate_v4() PRIMARY KEY,
	name TEXT NOT NULL,
	read_project BOOLEAN NOT NULL,
	manage_project BOOLEAN NOT NULL,
	read_prod BOOLEAN NOT NULL,
	read_prod_status BOOLEAN NOT NULL,
	manage_prod BOOLEAN NOT NULL,
	read_dev BOOLEAN NOT NULL,
	read_dev_status BOOLEAN NOT NULL,
	manage_dev BOOLEAN NOT NULL,
	read_project_members BOOLEAN NOT NULL,
	manage_project_members BOOLEAN NOT NULL,
	admin BOOLEAN NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX project_roles_name_idx ON project_roles (lower(name));

-- The roles as seeded, then as 0061.sql and 0064.sql change them: ids are generated.
INSERT INTO org_roles (name, read_org, manage_org, read_projects, create_projects, manage_projects, read_org_members, manage_org_members, guest, admin)
VALUES
	('admin', true, true, true, true, true, true, true, false, true),
	('editor', true, false, true, true, false, true, true, false, false),
	('viewer', true, false, true, false, false, false, false, false, false),
	('guest', true, false, true, false, false, false, false, true, false);

INSERT INTO project_roles (name, read_project, manage_project, read_prod, read_prod_status, manage_prod, read_dev, read_dev_status, manage_dev, read_project_members, manage_project_members, admin)
VALUES
	('admin', true, true, true, true, true, true, true, true, true, true, true),
	('editor', true, false, true, true, false, true, true, true, true, true, false),
	('viewer', true, false, true, false, false, true, false, false, false, false, false);

CREATE TABLE users_orgs_roles (
	user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	org_id UUID NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
	org_role_id UUID NOT NULL REFERENCES org_roles (id) ON DELETE CASCADE,
	attributes JSONB DEFAULT '{}'::JSONB NOT NULL,
	PRIMARY KEY (user_id, org_id)
);
CREATE INDEX users_orgs_roles_org_user_idx ON users_orgs_roles (org_id, user_id);

CREATE TABLE users_projects_roles (
	user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	project_id UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
	project_role_id UUID NOT NULL REFERENCES project_roles (id) ON DELETE CASCADE,
	resources JSONB NOT NULL DEFAULT '[]'::jsonb,
	restrict_resources BOOLEAN NOT NULL DEFAULT FALSE,
	PRIMARY KEY (user_id, project_id)
);
CREATE INDEX users_projects_roles_project_user_idx ON users_projects_roles (project_id, user_id);

CREATE TABLE usergroups_orgs_roles (
	usergroup_id UUID NOT NULL REFERENCES usergroups (id) ON DELETE CASCADE,
	org_id UUID NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
	org_role_id UUID NOT NULL REFERENCES org_roles (id) ON DELETE CASCADE,
	PRIMARY KEY (usergroup_id, org_id)
);
CREATE INDEX usergroups_orgs_roles_org_usergroup_idx ON usergroups_orgs_roles (org_id, usergroup_id);

CREATE TABLE usergroups_projects_roles (
	usergroup_id UUID NOT NULL REFERENCES usergroups (id) ON DELETE CASCADE,
	project_id UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
	project_role_id UUID NOT NULL REFERENCES project_roles (id) ON DELETE CASCADE,
	resources JSONB NOT NULL DEFAULT '[]'::jsonb,
	restrict_resources BOOLEAN NOT NULL DEFAULT FALSE,
	PRIMARY KEY (usergroup_id, project_id)
);
CREATE INDEX usergroups_projects_roles_project_usergroup_idx ON usergroups_projects_roles (project_id, usergroup_id);

CREATE TABLE auth_clients (
	id UUID DEFAULT uuid_generate_v4() PRIMARY KEY,
	display_name TEXT NOT NULL,
	created_on TIMESTAMPTZ DEFAULT now() NOT NULL,
	updated_on TIMESTAMPTZ DEFAULT now() NOT NULL
);
INSERT INTO auth_clients (id, display_name)
VALUES
	('12345678-0000-0000-0000-000000000001', 'Rill Web'),
	('12345678-0000-0000-0000-000000000002', 'Rill CLI'),
	('12345678-0000-0000-0000-000000000003', 'Rill Support');

CREATE TABLE user_auth_tokens (
	id UUID DEFAULT uuid_generate_v4() PRIMARY KEY,
	secret_hash BYTEA NOT NULL,
	user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	display_name TEXT NOT NULL,
	auth_client_id UUID REFERENCES auth_clients (id) ON DELETE CASCADE,
	representing_user_id UUID REFERENCES users (id) ON DELETE CASCADE,
	expires_on TIMESTAMPTZ,
	refresh BOOLEAN NOT NULL DEFAULT false,
	created_on TIMESTAMPTZ DEFAULT now() NOT NULL,
	used_on TIMESTAMPTZ DEFAULT now() NOT NULL
);
CREATE INDEX user_auth_tokens_user_idx ON user_auth_tokens (user_id);

CREATE TABLE service (
	id UUID DEFAULT uuid_generate_v4() PRIMARY KEY,
	org_id UUID NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	attributes JSONB NOT NULL DEFAULT '{}'::jsonb,
	created_on TIMESTAMPTZ DEFAULT now() NOT NULL,
	updated_on TIMESTAMPTZ DEFAULT now() NOT NULL,
	active_on TIMESTAMPTZ DEFAULT now() NOT NULL
);
CREATE UNIQUE INDEX service_name_idx ON service (org_id, lower(name));

CREATE TABLE service_auth_tokens (
	id UUID DEFAULT uuid_generate_v4() PRIMARY KEY,
	secret_hash BYTEA NOT NULL,
	service_id UUID NOT NULL REFERENCES service (id) ON DELETE CASCADE,
	created_on TIMESTAMPTZ DEFAULT now() NOT NULL,
	expires_on TIMESTAMPTZ,
	used_on TIMESTAMPTZ DEFAULT now() NOT NULL
);
CREATE INDEX service_auth_tokens_service_idx ON service_auth_tokens (service_id);

CREATE TABLE service_orgs_roles (
	service_id UUID PRIMARY KEY NOT NULL REFERENCES service (id) ON DELETE CASCADE,
	org_id UUID NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
	org_role_id UUID NOT NULL REFERENCES org_roles (id) ON DELETE CASCADE
);
CREATE INDEX service_orgs_roles_org_service_idx ON service_orgs_roles (org_id, service_id);

CREATE TABLE service_projects_roles (
	service_id UUID NOT NULL REFERENCES service (id) ON DELETE CASCADE,
	project_id UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
	project_role_id UUID NOT NULL REFERENCES project_roles (id) ON DELETE CASCADE,
	PRIMARY KEY (service_id, project_id)
);
CREATE INDEX service_projects_roles_project_service_idx ON service_projects_roles (project_id, service_id);

-- Magic tokens (public URLs), as the migrations from 0021.sql on leave the table: made with
-- created_by_user_id and attributes, then state, display_name, internal, resources (replacing
-- resource_type/resource_name), fields (metrics_view_fields) and metrics_view_filter_jsons
-- (replacing filter_json: metrics view name -> the filter's protojson as a JSON string).
CREATE TABLE magic_auth_tokens (
	id UUID DEFAULT uuid_generate_v4() PRIMARY KEY,
	secret_hash BYTEA NOT NULL,
	secret BYTEA NOT NULL DEFAULT '',
	secret_encryption_key_id TEXT NOT NULL DEFAULT '',
	project_id UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
	created_on TIMESTAMPTZ DEFAULT now() NOT NULL,
	expires_on TIMESTAMPTZ,
	used_on TIMESTAMPTZ DEFAULT now() NOT NULL,
	created_by_user_id UUID REFERENCES users (id) ON DELETE SET NULL,
	attributes JSONB DEFAULT '{}'::JSONB NOT NULL,
	fields TEXT[] NOT NULL DEFAULT '{}',
	state TEXT NOT NULL DEFAULT '',
	display_name TEXT NOT NULL DEFAULT '',
	internal BOOLEAN NOT NULL DEFAULT false,
	resources JSONB NOT NULL DEFAULT '[]'::JSONB,
	metrics_view_filter_jsons JSONB NOT NULL DEFAULT '{}'::JSONB
);
CREATE INDEX magic_auth_tokens_project_id_idx ON magic_auth_tokens (project_id);
