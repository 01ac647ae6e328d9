package ctl

import (
	"errors"
	"fmt"
	"strings"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/adminapi/client"
)

// NetworkFlags change where a token may be used (the edit commands).
type NetworkFlags struct {
	AllowNetwork []string `name:"allow-network" sep:"none" help:"Allow the token only from this network (CIDR); repeatable; replaces the networks it had." placeholder:"CIDR"`
	AnyNetwork   bool     `name:"any-network" help:"Remove the token's network constraint: it works from anywhere again."`
}

func (f NetworkFlags) edit() (apiv1.TokenLimitsEdit, error) {
	switch {
	case f.AnyNetwork && len(f.AllowNetwork) > 0:
		return apiv1.TokenLimitsEdit{}, errors.New("give --allow-network or --any-network, not both")
	case f.AnyNetwork:
		return apiv1.TokenLimitsEdit{AllowedNetworks: &[]string{}}, nil
	case len(f.AllowNetwork) > 0:
		return apiv1.TokenLimitsEdit{AllowedNetworks: &f.AllowNetwork}, nil
	}
	return apiv1.TokenLimitsEdit{}, errors.New("nothing to change: give --allow-network CIDR (repeatable) or --any-network")
}

// printNetworks says where an edited token may now be used.
func printNetworks(g *Globals, t apiv1.TokenInfo) {
	if len(t.AllowedNetworks) == 0 {
		fmt.Fprintf(g.out, "Token %s may be used from any network.\n", t.Prefix)
		return
	}
	fmt.Fprintf(g.out, "Token %s may be used only from %s.\n", t.Prefix, strings.Join(t.AllowedNetworks, ", "))
}

// TokenEditCmd is `rillctl token edit <token-id>`.
type TokenEditCmd struct {
	TokenID string `arg:"" name:"token-id" help:"Token id as listed, its UUID, or the token itself."`
	User    string `help:"Edit a token of this user instead of yours (superusers)." placeholder:"EMAIL"`
	NetworkFlags
}

// Run changes the token.
func (c *TokenEditCmd) Run(g *Globals) error {
	edit, err := c.edit()
	if err != nil {
		return err
	}
	return call(g, func(cl *client.Client) (apiv1.TokenInfo, error) { return cl.EditToken(g.ctx, c.User, c.TokenID, edit) },
		func(t apiv1.TokenInfo) { printNetworks(g, t) })
}

// ServiceTokenEditCmd is `rillctl service token edit [<service>] <token-id>`.
type ServiceTokenEditCmd struct {
	OrgFlag
	Args    []string `arg:"" name:"token-id" help:"Token id or its prefix as listed; optionally after the service's name."`
	Service string   `help:"Service name (default: the service of the token, found in --org)."`
	NetworkFlags
}

// Run changes the token.
func (c *ServiceTokenEditCmd) Run(g *Globals) error {
	edit, err := c.edit()
	if err != nil {
		return err
	}
	name, ref, err := serviceTokenArgs(c.Args, c.Service)
	if err != nil {
		return err
	}
	return call(g, func(cl *client.Client) (apiv1.TokenInfo, error) {
		if name, ref, err = serviceOfToken(g, cl, c.Org, name, ref); err != nil {
			return apiv1.TokenInfo{}, err
		}
		return cl.EditServiceToken(g.ctx, c.Org, name, ref, edit)
	}, func(t apiv1.TokenInfo) { printNetworks(g, t) })
}
