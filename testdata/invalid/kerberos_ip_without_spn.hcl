host "web1" {
  address = "10.0.0.11"
  winrm {
    auth = "kerberos"
  }
}

host "web2" {
  address = "10.0.0.12"
  winrm {
    auth = "negotiate"
    spn  = "HTTP/web2.corp.example"
    user = "deploy@CORP.EXAMPLE"
    password = var.pw
  }
}

variable "pw" {
  type      = string
  sensitive = true
  default   = "secret"
}
# ERROR: 4:12 Missing spn
