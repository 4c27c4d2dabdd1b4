host "web1" {
  address = "web1.corp.example"
  winrm {
    user     = "deploy"
    password = var.pw
    spn      = "HTTP/web1.corp.example"
    realm    = "CORP.EXAMPLE"
  }
}

host "web2" {
  address = "web2.corp.example"
  winrm {
    auth     = "kerberos2"
    user     = "deploy"
    password = var.pw
  }
}

variable "pw" {
  type      = string
  sensitive = true
  default   = "secret"
}
# ERROR: 6:16 Kerberos setting without Kerberos
# ERROR: 7:16 Kerberos setting without Kerberos
# ERROR: 14:16 Invalid auth
