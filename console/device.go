package console

import (
	"net/http"
	"net/url"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
)

// The page where a signed-in user approves or denies a `rillctl login` (the device
// authorization grant's verification_uri). A user not signed in is sent to sign in and back
// here, code and all (page's redirect keeps the query in next).

type deviceData struct {
	UserCode string
	Req      *apiv1.DeviceRequest
	Error    string
	Done     string // approved, denied
}

func (c *Console) devicePage(w http.ResponseWriter, v *view) error {
	v.Title, v.Nav = "Sign in rillctl", "tokens"
	code := v.r.URL.Query().Get("user_code")
	d := deviceData{UserCode: code, Done: v.r.URL.Query().Get("done")}
	if d.Done != "approved" && d.Done != "denied" {
		d.Done = ""
	}
	if code != "" && d.Done == "" {
		var req apiv1.DeviceRequest
		err := v.call("GET", "/v1/device", url.Values{"user_code": {code}}, nil, &req)
		switch statusOf(err) {
		case 0:
			if err != nil {
				return err
			}
			d.Req = &req
		case http.StatusBadRequest, http.StatusNotFound, http.StatusConflict:
			d.Error = err.(*apiError).Message
		default:
			return err
		}
	}
	v.Data = d
	c.render(w, v, "device", http.StatusOK)
	return nil
}

// deviceDecide posts the user's decision; the answer is the page again, saying what was done.
func (c *Console) deviceDecide(approve bool) pageFunc {
	return func(w http.ResponseWriter, v *view) error {
		code := v.r.PostForm.Get("user_code")
		path, done := "/v1/device/deny", "denied"
		if approve {
			path, done = "/v1/device/approve", "approved"
		}
		back := Prefix + "/device?" + url.Values{"user_code": {code}}.Encode()
		if err := v.call("POST", path, nil, apiv1.DeviceDecision{UserCode: code}, nil); err != nil {
			return v.refused(w, back, "", err)
		}
		notice := "Denied: rillctl is told so, and gets no token."
		if approve {
			notice = "Approved: rillctl receives a new token of yours within a few seconds (it is listed under My tokens). You can close this page."
		}
		return v.back(w, Prefix+"/device?"+url.Values{"user_code": {code}, "done": {done}}.Encode(), &flash{Notice: notice})
	}
}
