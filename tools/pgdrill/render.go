package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// render is what the drill takes from a render of the program: nothing about the backups is
// restated here.
type render struct {
	// scripts are the postgres-backup ConfigMap's files, by name: the script and the S3 code it
	// sources from its directory (s3.sh), as the pods mount them.
	scripts map[string]string
	// serverArgs are the postgres container's arguments after the program name.
	serverArgs []string
	// walOutbox and shipInterval are the containers' environment.
	walOutbox, shipInterval string
	// prefix is the backups' prefix in the bucket.
	prefix string
	// baseSteps and dumpSteps are the CronJobs' containers' script arguments, in order.
	baseSteps, dumpSteps [][]string
	// baseLogin and dumpLogin are the environment of the CronJobs' backup steps: PGUSER,
	// PGDATABASE and the Secret PGPASSWORD is read from.
	baseLogin, dumpLogin container

	// config are the postgres-config ConfigMap's files, by name (pg_hba.conf, the roles, the
	// exporter's query file).
	config map[string]string
	// hbaFile is the server's hba_file argument; rolesScript is the db-roles container's script.
	hbaFile, rolesScript string
	// roles is the db-roles container: its environment (roles, Secrets of their passwords).
	roles container
	// exporter is the exporter's container: its login and its query file.
	exporter container
	// readiness is the server container's readiness probe command.
	readiness []string
}

type envVar struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	ValueFrom struct {
		SecretKeyRef struct {
			Name string `yaml:"name"`
			Key  string `yaml:"key"`
		} `yaml:"secretKeyRef"`
	} `yaml:"valueFrom"`
}

type container struct {
	Name           string   `yaml:"name"`
	Command        []string `yaml:"command"`
	Args           []string `yaml:"args"`
	Env            []envVar `yaml:"env"`
	ReadinessProbe struct {
		Exec struct {
			Command []string `yaml:"command"`
		} `yaml:"exec"`
	} `yaml:"readinessProbe"`
}

// env is a plain variable's value ("" for none, or one read from a Secret).
func (c container) env(name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// secretRef is the Secret and key a variable is read from, as "secret/key" ("" for none).
func (c container) secretRef(name string) string {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom.SecretKeyRef.Name != "" {
			return e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		}
	}
	return ""
}

type podSpec struct {
	InitContainers []container `yaml:"initContainers"`
	Containers     []container `yaml:"containers"`
}

func one(dir, pattern string, into any) error {
	files, _ := filepath.Glob(filepath.Join(dir, "manifests", pattern))
	if len(files) != 1 {
		return fmt.Errorf("%d rendered files match %s in %s, want 1 (render the stack first)", len(files), pattern, dir)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		return err
	}
	return yaml.Unmarshal(b, into)
}

// scriptSteps returns the script arguments of each container of a CronJob, init containers
// first, and its first container (the backup step, which logs in to the server).
func scriptSteps(dir, pattern string) ([][]string, container, error) {
	var cj struct {
		Spec struct {
			JobTemplate struct {
				Spec struct {
					Template struct {
						Spec podSpec `yaml:"spec"`
					} `yaml:"template"`
				} `yaml:"spec"`
			} `yaml:"jobTemplate"`
		} `yaml:"spec"`
	}
	if err := one(dir, pattern, &cj); err != nil {
		return nil, container{}, err
	}
	spec := cj.Spec.JobTemplate.Spec.Template.Spec
	var steps [][]string
	all := append(spec.InitContainers, spec.Containers...)
	for _, c := range all {
		if len(c.Command) < 3 || c.Command[1] != scriptDir+"/postgres-backup.sh" {
			return nil, container{}, fmt.Errorf("%s: container %s does not run the backup script: %v", pattern, c.Name, c.Command)
		}
		steps = append(steps, c.Command[2:])
	}
	if len(steps) != 2 {
		return nil, container{}, fmt.Errorf("%s: %d steps, want 2 (backup, upload)", pattern, len(steps))
	}
	if all[0].env("PGUSER") == "" || all[0].secretRef("PGPASSWORD") == "" || all[0].env("PGDATABASE") == "" {
		return nil, container{}, fmt.Errorf("%s: the backup step has no PGUSER, PGDATABASE or PGPASSWORD from a Secret", pattern)
	}
	return steps, all[0], nil
}

func readRender(dir string) (*render, error) {
	r := &render{}
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	if err := one(dir, "configmap-*-data-postgres-backup.yaml", &cm); err != nil {
		return nil, err
	}
	r.scripts = cm.Data
	if r.scripts["postgres-backup.sh"] == "" {
		return nil, fmt.Errorf("the postgres-backup ConfigMap has no postgres-backup.sh")
	}
	var sts struct {
		Spec struct {
			Template struct {
				Spec podSpec `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	if err := one(dir, "statefulset-*-data-postgres.yaml", &sts); err != nil {
		return nil, err
	}
	for _, c := range sts.Spec.Template.Spec.Containers {
		switch c.Name {
		case "postgres":
			if len(c.Args) == 0 || c.Args[0] != "postgres" {
				return nil, fmt.Errorf("the postgres container's args do not start the server: %v", c.Args)
			}
			r.serverArgs = c.Args[1:]
			r.walOutbox = c.env("WAL_OUTBOX")
			r.readiness = c.ReadinessProbe.Exec.Command
			for i, a := range r.serverArgs {
				if v, ok := strings.CutPrefix(a, "hba_file="); ok && i > 0 && r.serverArgs[i-1] == "-c" {
					r.hbaFile = v
				}
			}
		case "wal-shipper":
			r.shipInterval = c.env("SHIP_INTERVAL")
			r.prefix = c.env("BACKUP_PREFIX")
		case "db-roles":
			r.roles = c
			if len(c.Command) == 2 && c.Command[0] == "/bin/sh" {
				r.rolesScript = c.Command[1]
			}
		case "exporter":
			r.exporter = c
		}
	}
	if !strings.Contains(strings.Join(r.serverArgs, " "), "archive_command=") || r.walOutbox == "" || r.shipInterval == "" || r.prefix == "" {
		return nil, fmt.Errorf("the postgres StatefulSet has no archive_command, WAL_OUTBOX, or wal-shipper (SHIP_INTERVAL, BACKUP_PREFIX)")
	}
	if r.hbaFile == "" || r.rolesScript == "" || len(r.readiness) == 0 {
		return nil, fmt.Errorf("the postgres StatefulSet has no hba_file argument, db-roles container running a script, or readiness probe")
	}
	var config struct {
		Data map[string]string `yaml:"data"`
	}
	if err := one(dir, "configmap-*-data-postgres-config.yaml", &config); err != nil {
		return nil, err
	}
	r.config = config.Data
	for _, f := range []string{path.Base(r.hbaFile), path.Base(r.rolesScript), "roles.sql", path.Base(r.exporter.env("PG_EXPORTER_EXTEND_QUERY_PATH"))} {
		if r.config[f] == "" {
			return nil, fmt.Errorf("the postgres-config ConfigMap has no %s", f)
		}
	}
	var err error
	if r.baseSteps, r.baseLogin, err = scriptSteps(dir, "cronjob-*-data-postgres-base-backup.yaml"); err != nil {
		return nil, err
	}
	if r.dumpSteps, r.dumpLogin, err = scriptSteps(dir, "cronjob-*-data-postgres-dump.yaml"); err != nil {
		return nil, err
	}
	return r, nil
}

// archivingQuery is the exporter's query of the archiving settings, from its query file.
func (r *render) archivingQuery() (string, error) {
	var queries map[string]struct {
		Query string `yaml:"query"`
	}
	if err := yaml.Unmarshal([]byte(r.config[path.Base(r.exporter.env("PG_EXPORTER_EXTEND_QUERY_PATH"))]), &queries); err != nil {
		return "", err
	}
	if q := queries["pg_archiving"].Query; q != "" {
		return q, nil
	}
	return "", fmt.Errorf("the exporter's query file has no pg_archiving query")
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
