host "web1" {
  address = "web1.corp.example"
  winrm {
    auth   = "kerberos"
    keytab = "deploy.keytab"
  }
}

host "web2" {
  address = "web2.corp.example"
  winrm {
    auth     = "kerberos"
    user     = "deploy@CORP.EXAMPLE"
    keytab   = "deploy.keytab"
    password = var.pw
  }
}

variable "pw" {
  type      = string
  sensitive = true
  default   = "secret"
}
# ERROR: 5:14 keytab without user
# ERROR: 14:16 keytab with password
