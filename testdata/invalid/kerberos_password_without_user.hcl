host "web1" {
  address = "web1.corp.example"
  winrm {
    auth     = "kerberos"
    password = var.pw
  }
}

host "web2" {
  address = "web2.corp.example"
  winrm {
    auth = "negotiate"
    user = "deploy@CORP.EXAMPLE"
  }
}

variable "pw" {
  type      = string
  sensitive = true
  default   = "secret"
}
# ERROR: 5:16 Password without user
# ERROR: 13:12 User without password or keytab
