package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
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
}

type container struct {
	Name    string   `yaml:"name"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	} `yaml:"env"`
}

func (c container) env(name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
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

// scriptSteps returns the script arguments of each container of a CronJob, init containers first.
func scriptSteps(dir, pattern string) ([][]string, error) {
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
		return nil, err
	}
	spec := cj.Spec.JobTemplate.Spec.Template.Spec
	var steps [][]string
	for _, c := range append(spec.InitContainers, spec.Containers...) {
		if len(c.Command) < 3 || c.Command[1] != scriptDir+"/postgres-backup.sh" {
			return nil, fmt.Errorf("%s: container %s does not run the backup script: %v", pattern, c.Name, c.Command)
		}
		steps = append(steps, c.Command[2:])
	}
	if len(steps) != 2 {
		return nil, fmt.Errorf("%s: %d steps, want 2 (backup, upload)", pattern, len(steps))
	}
	return steps, nil
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
		case "wal-shipper":
			r.shipInterval = c.env("SHIP_INTERVAL")
			r.prefix = c.env("BACKUP_PREFIX")
		}
	}
	if !strings.Contains(strings.Join(r.serverArgs, " "), "archive_command=") || r.walOutbox == "" || r.shipInterval == "" || r.prefix == "" {
		return nil, fmt.Errorf("the postgres StatefulSet has no archive_command, WAL_OUTBOX, or wal-shipper (SHIP_INTERVAL, BACKUP_PREFIX)")
	}
	var err error
	if r.baseSteps, err = scriptSteps(dir, "cronjob-*-data-postgres-base-backup.yaml"); err != nil {
		return nil, err
	}
	if r.dumpSteps, err = scriptSteps(dir, "cronjob-*-data-postgres-dump.yaml"); err != nil {
		return nil, err
	}
	return r, nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
